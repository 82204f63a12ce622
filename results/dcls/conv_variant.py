# The "loop fix only" variant timed for results/dcls/bench_conv_unbind.json: the current code with
# the DCLS layer forced back onto F.conv1d. Run: python results/dcls/conv_variant.py --threads 2 ...
import sys
from pathlib import Path

from torch.nn import functional as F

from delayprop.baselines import dcls

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_dcls  # noqa: E402


def conv_tm(self, x):
    xp = F.pad(x.permute(1, 2, 0), (self.taps - 1, self.right_padding))
    return F.conv1d(xp, self.kernel()).permute(2, 0, 1)


dcls.DCLSSynapses.currents_tm = conv_tm
sys.exit(bench_dcls.main(sys.argv[1:]))
