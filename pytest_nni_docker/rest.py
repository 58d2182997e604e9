"""A client for the REST API of a running NNI manager (``/api/v1/nni``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

logger = logging.getLogger(__name__)


class RestError(Exception):
    """The manager returned an HTTP error."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class ManagerUnreachable(RestError):
    """The manager did not accept the connection or did not respond in time."""


class NniRestClient:
    """Calls the REST API of one NNI manager at ``http://HOST:PORT``.

    Connection failures raise ``ManagerUnreachable`` so that a caller can tell a
    manager that is gone from one that returns an error.
    """

    def __init__(self, host: str, port: int, timeout: float = 10.0, url_prefix: str = ""):
        self.base_url = f"http://{host}:{port}" + (f"/{url_prefix.strip('/')}" if url_prefix else "")
        self.api_url = f"{self.base_url}/api/v1/nni"
        self.timeout = timeout
        self.session = requests.Session()
        # Never send this traffic through a proxy from the environment.
        self.session.trust_env = False

    def close(self) -> None:
        self.session.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=kwargs.pop("timeout", self.timeout), **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ManagerUnreachable(f"NNI manager at {self.base_url} did not respond to {method} {url}: {error}") from error
        if response.status_code >= 400:
            detail = response.text
            try:
                detail = response.json().get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise RestError(f"{method} {url} failed with HTTP {response.status_code}: {detail}", response.status_code)
        return response

    def _get_json(self, path: str, **kwargs: Any) -> Any:
        response = self._request("GET", self.api_url + path, **kwargs)
        if not response.content:
            return None
        return response.json()

    def check_status(self, timeout: float | None = None) -> dict[str, Any]:
        """Return ``{"status": ..., "errors": [...]}``.

        NNI 3.0 answers with the plain text INITIALIZING until the manager is ready.
        """
        response = self._request("GET", self.api_url + "/check-status", timeout=timeout or self.timeout)
        try:
            data = response.json()
        except ValueError:
            return {"status": response.text.strip() or "UNKNOWN", "errors": []}
        if not isinstance(data, dict):
            return {"status": str(data), "errors": []}
        return data

    def version(self) -> str:
        """Return the manager's NNI version; the endpoint sends bare text."""
        text = self._request("GET", self.api_url + "/version").text.strip()
        try:
            decoded = json.loads(text)
            return str(decoded)
        except ValueError:
            return text

    def experiment(self) -> dict[str, Any]:
        return self._get_json("/experiment") or {}

    def job_statistics(self) -> dict[str, int]:
        data = self._get_json("/job-statistics") or []
        return {item["trialJobStatus"]: int(item["trialJobNumber"]) for item in data}

    def trial_jobs(self) -> list[dict[str, Any]]:
        return self._get_json("/trial-jobs") or []

    def metric_data(self) -> list[dict[str, Any]]:
        return self._get_json("/metric-data") or []

    def trial_file(self, trial_id: str, name: str) -> str:
        """Return a trial's ``stdout``, ``stderr`` or ``trial.log`` as text."""
        return self._request("GET", f"{self.api_url}/trial-file/{trial_id}/{name}").text

    def manager_log(self, name: str) -> str:
        """Return a file of the manager's log folder, such as ``nnimanager.log``."""
        return self._request("GET", f"{self.base_url}/logs/{name}").text

    def update_experiment(self, update_type: str, params: dict[str, Any]) -> None:
        profile = self.experiment()
        profile["params"].update(params)
        self._request("PUT", f"{self.api_url}/experiment", params={"update_type": update_type}, json=profile)

    def cancel_trial(self, trial_id: str) -> None:
        self._request("DELETE", f"{self.api_url}/trial-jobs/{trial_id}")

    def stop_experiment(self) -> None:
        """Ask the manager to stop; it answers at once and shuts down afterwards."""
        self._request("DELETE", f"{self.api_url}/experiment", timeout=5)
