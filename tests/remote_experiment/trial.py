"""A trial of about one second that reports its parameters' sum and the machine it ran on."""

import socket
import time

import nni

parameters = nni.get_next_parameter()
print(f"trial on {socket.gethostname()} with {parameters}", flush=True)
time.sleep(float(parameters.get("seconds", 1.0)))
nni.report_intermediate_result(parameters["x"])
nni.report_final_result(parameters["x"] + parameters["y"])
print(f"finished on {socket.gethostname()}", flush=True)
