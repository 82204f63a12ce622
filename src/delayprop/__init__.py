"""delayprop: spiking networks with learnable synaptic and axonal delays, trained online by
three-factor (e-prop) rules, with an exact BPTT baseline on the same model objects."""

__version__ = "0.1.0"
