"""NNI trial for the plugin's tests: sleep for a long time and report nothing."""

import time

import nni

nni.get_next_parameter()
time.sleep(600)
