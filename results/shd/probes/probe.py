# ruff: noqa  (the throwaway probe script exactly as run; not part of the package)
"""Quick hyperparameter probes for run (a) (throwaway; the results are logged)."""
import json, sys, time, torch
torch.set_num_threads(1)
from delayprop.data import load_dataset, batches, train_val_split
from delayprop.layers import NetConfig, DelayNet
from delayprop.rules import eprop_gradients, bptt_gradients
from delayprop.rules.eprop import EpropConfig
from delayprop.losses import predict
mt = 1.0
tr = load_dataset("shd","train",data_dir="/work/shared/data/shd-repro",dt=0.01,max_time=mt,progress=False)
ti, vi = train_val_split(tr.y, tr.speaker, 0.1, seed=0)
g = torch.Generator().manual_seed(0)
sub = ti[torch.randperm(len(ti), generator=g)[:int(sys.argv[2]) if len(sys.argv)>2 else 1000]]
trs, vas = tr.subset(sub), tr.subset(vi)
def run(p):
    p = dict(p); epochs = p.pop("epochs", 3); lr = p.pop("lr", 2e-3); dlr = p.pop("delay_lr", 0.1)
    loss = p.pop("loss", "sum"); meth = p.pop("method", "eprop"); bs = p.pop("bs", 64)
    torch.manual_seed(0)
    net = DelayNet(NetConfig(**p))
    dp = [q for n, q in net.named_parameters() if n.endswith("_delay")]
    wp = [q for n, q in net.named_parameters() if not n.endswith("_delay")]
    opt = torch.optim.Adam([{"params": wp, "lr": lr}] + ([{"params": dp, "lr": dlr}] if dp else []))
    t0 = time.time(); hist = []
    for ep in range(epochs):
        rate = 0; nb = 0
        for xb, yb in batches(trs, bs, seed=ep):
            opt.zero_grad()
            if meth == "eprop": r = eprop_gradients(net, xb, yb, EpropConfig(loss=loss))
            else: r = bptt_gradients(net, xb, yb, loss=loss)
            opt.step(); net.clamp_delays_()
            rate += float(r.records[0].z.mean()); nb += 1
        with torch.no_grad():
            c = 0
            for xb, yb in batches(vas, 512, shuffle=False):
                c += int((predict(net(xb), loss) == yb).sum())
        hist.append((round(c / len(vas), 4), round(rate / nb, 4)))
    return hist, time.time() - t0
for line in open(sys.argv[1]):
    if not line.strip() or line.startswith("#"): continue
    p = json.loads(line)
    hist, wall = run(p)
    print(json.dumps({"cfg": p, "val_acc_rate_per_epoch": hist, "wall_s": round(wall, 1)}), flush=True)
