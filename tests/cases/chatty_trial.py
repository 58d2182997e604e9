"""NNI trial for the plugin's tests: report an intermediate metric every half second for a long time."""

import time

import nni

nni.get_next_parameter()
for step in range(1200):
    nni.report_intermediate_result(float(step))
    time.sleep(0.5)
