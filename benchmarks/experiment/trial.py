"""Benchmark trial: sleep about one second, then report ``x`` as the final metric."""

import time

import nni

params = nni.get_next_parameter()
time.sleep(1.0)
nni.report_final_result(float(params["x"]))
