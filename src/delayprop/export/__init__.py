"""Trained networks out of delayprop: :mod:`delayprop.export.nir` writes the hard-delay
:class:`~delayprop.layers.DelayNet` as a NIR graph and reads it back;
:mod:`delayprop.export.cost` counts what the network costs on hardware (synapses, delays and
their bits, quantised weights, delay buffers, synaptic operations, spikes, latency).
``delayprop export`` (:mod:`delayprop.cli.export`) is their command line; see docs/hardware.md.
"""
