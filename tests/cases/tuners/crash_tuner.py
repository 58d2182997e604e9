"""Custom NNI tuners for the plugin's tests: one raises on its first parameter request, one starts too slowly."""

from nni.tuner import Tuner


class CrashTuner(Tuner):
    def update_search_space(self, search_space):
        self.search_space = search_space

    def generate_parameters(self, parameter_id, **kwargs):
        raise RuntimeError("CrashTuner fails on purpose in generate_parameters")

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass


class SlowStartTuner(Tuner):
    """A tuner that takes longer to start than NNI waits for the dispatcher (10 s in NNI 3.0), so NNI reports ERROR."""

    def __init__(self, delay: float = 60.0):
        import time

        time.sleep(delay)

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        return {}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass
