#!/usr/bin/env bash
# e-prop vs BPTT gradients (float64), as quoted in README.md. Output: results/gradcheck/*.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/gradcheck
delayprop gradcheck --mode smooth --delays syn,ax > $out/ff1_smooth.txt
delayprop gradcheck --mode hard --delays syn,ax > $out/ff1_hard.txt
delayprop gradcheck --mode hard --delays syn,ax --kappa 0.9 --loss mean > $out/ff1_hard_kappa.txt
delayprop gradcheck --layers 2 --mode hard --delays syn,ax > $out/ff2_hard.txt
delayprop gradcheck --recurrent --mode hard --delays syn,ax,rec > $out/rec1_hard.txt
delayprop gradcheck --recurrent --mode hard --delays syn,ax,rec --kappa 0.9 --loss mean > $out/rec1_hard_kappa.txt
# learned readout delays (added later; the lines above were not rerun)
delayprop gradcheck --mode hard --delays syn,out --kappa 0.9 > $out/ff1_hard_readout_delays.txt
delayprop gradcheck --layers 2 --mode hard --delays syn,out --kappa 0.9 > $out/ff2_hard_readout_delays.txt
