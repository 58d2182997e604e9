"""A trial whose metrics are a known function of its parameters.

final = 10 * x + y and intermediate step i = x * i, so a test can check that
each trial's metrics belong to the parameters the result reports.
"""

import nni

params = nni.get_next_parameter()
for step in range(3):
    nni.report_intermediate_result(params["x"] * step)
print("parameters", params)
nni.report_final_result(10 * params["x"] + params["y"])
