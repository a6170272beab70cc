"""The deployment's bank directory for a paycore process started by a test: the sandbox
banks' merchant credentials (keys, certificates, secrets, URLs), written to a file by the
test that started the banks, read back in the other process — in the file format of
`gateways.sandbox.directory`, which the production-shaped bench uses too.

    PAYCORE_BANKS=tests.gateways.sandbox_directory:banks
    PAYCORE_TEST_SANDBOX_CREDENTIALS=/path/to/credentials.json

Real key material travels as PEM / hex; nothing is stubbed.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from gateways import BankDirectory
from gateways.sandbox import SandboxFleet
from gateways.sandbox.directory import directory_from, write_directory

ENV = "PAYCORE_TEST_SANDBOX_CREDENTIALS"
#: optional: where the banks notify (the API server's .../v1/notifications) and the
#: adapters' read time-out in milliseconds (below the sandbox's hang, for time-out faults)
NOTIFY_ENV, TIMEOUT_ENV = "PAYCORE_TEST_NOTIFY_BASE_URL", "PAYCORE_TEST_ADAPTER_TIMEOUT_MS"


def write_credentials(fleet: SandboxFleet, path: Path) -> Path:
    """What each bank's merchant holds, for another process to build its adapters from."""
    return write_directory(fleet.banks, path)


def banks() -> BankDirectory:
    """PAYCORE_BANKS factory: adapters for the sandbox banks named in the credentials file."""
    timeout = dt.timedelta(milliseconds=int(os.environ.get(TIMEOUT_ENV, "5000")))
    return directory_from(Path(os.environ[ENV]), notify_base_url=os.environ.get(NOTIFY_ENV),
                          timeout=timeout)
