"""Test helpers shared by every step: step selection, gradient checks, strategies, parity.

Nothing here imports ``npgrad`` at module level: the package under test is
chosen per run (``--step NN`` or ``--impl DIR``) and handed to helpers as
arguments.
"""
