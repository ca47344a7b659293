"""Fit a real neuron: a Pospischil RS model from 6 of 30 current steps, then
predict the 24 steps it never saw.

Recording ``18711001.abf`` (shipped in ``examples/data/recordings``): an adapting
cell, 500 ms steps of 0..290 pA in 10 pA increments after a −100 pA pulse. The
real-cell protocol (``docs/real_cells.md``) measures the capacitance, series
resistance and baselines from the data, picks the training sweeps (the strongest
subthreshold step, the rheobase step and steps spread up to 290 pA), searches the
parameters on spike counts, latency and subthreshold error of those sweeps, polishes
them by Levenberg–Marquardt, and scores every sweep from rest.

Writes ``examples/output/40_fit_real_recording.png`` (overlays, measured vs model
f–I curve, first-spike latency, subthreshold response, parameter table with
standard errors) and ``examples/output/40_fit_real_recording/{params,metrics}.json``.
Takes a few minutes on a 2-core CPU.
"""

import json
import time
from pathlib import Path

import jax

from fitting import protocol
from hhjax.recordings import load_recording

jax.config.update("jax_enable_x64", True)  # float64, before any array is created

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "data" / "recordings" / "18711001.abf"
OUTPUT = HERE / "output"
N_TRAIN = 6

started = time.perf_counter()
recording = load_recording(RECORDING)
fit = protocol.fit_recording(recording, "pospischil-rs", n_train=N_TRAIN, log=print)
print(fit.summary())

document = fit.to_dict()
metrics, v_model, prepared = protocol.predict_recording(
    fit.params, recording, document=document, train=fit.train
)
summary = metrics["protocol"]
print(
    f"held-out sweeps within ±1 spike: {100 * summary['fraction_within_1']:.0f} %; "
    f"rheobase data {summary['rheobase_data_pA']} pA, model "
    f"{summary['rheobase_model_pA']} pA; subthreshold RMSE (held out) mean "
    f"{summary['mean_subthreshold_rmse_mV']:.2f} mV, median "
    f"{summary['median_subthreshold_rmse_mV']:.2f} mV; "
    f"{time.perf_counter() - started:.0f} s in all"
)

out_dir = OUTPUT / "40_fit_real_recording"
out_dir.mkdir(parents=True, exist_ok=True)
fit.save(out_dir / "params.json")
(out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
protocol.save_report(
    OUTPUT / "40_fit_real_recording.png",
    prepared,
    metrics,
    v_model,
    fit,
    title=f"{RECORDING.name}, pospischil-rs, trained on sweeps {list(fit.train)}",
)
print(f"wrote {OUTPUT / '40_fit_real_recording.png'} and {out_dir}/")
