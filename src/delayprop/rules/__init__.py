"""Learning rules for :class:`delayprop.layers.DelayNet`: e-prop (online, three-factor, no
autograd) and BPTT (autograd with surrogate gradients). Both return gradients keyed by
parameter name and can write them into ``.grad`` so any torch optimiser applies them."""

from delayprop.rules.bptt import bptt_gradients
from delayprop.rules.eprop import EpropConfig, eprop_gradients
from delayprop.rules.online import OnlineEprop, minimum_state

__all__ = ["EpropConfig", "OnlineEprop", "bptt_gradients", "eprop_gradients", "minimum_state"]
