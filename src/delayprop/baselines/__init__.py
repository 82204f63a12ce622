"""Baselines the three-factor rules are compared against.

* :mod:`delayprop.baselines.dcls`: offline BPTT delay learning with dilated convolutions with
  learnable spacings (Hammouamri et al., ICLR 2024; repository Thvnvtos/SNN-delays).
"""
