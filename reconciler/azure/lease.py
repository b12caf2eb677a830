"""An HA lease on an Azure Storage blob: of several replicas, only the holder writes.

The only module that imports `azure.storage.blob` (install the `lease` extra). Semantics:

- `start()` makes one acquisition attempt before returning, then a background thread renews the lease every
  `duration / 3` seconds while held, and tries to acquire it every `duration / 6` seconds while not.
- `may_write()` is true only while the lease is held *and* the last successful acquire/renew request was
  sent less than `duration - margin` seconds ago (margin: 20 % of the duration, at least 2 s). So a replica
  that cannot reach storage stops writing before Azure lets the lease expire and another replica takes it.
- A renewal that Azure refuses (409/412: another holder, 404: blob gone) marks the lease lost at once.
- `stop(release=True)` releases the lease so a standby takes over within `duration / 6` seconds; a replica
  that stops with a write still running does not release it and lets it expire instead.

The write path checks `may_write()` before every PUT attempt (retries and re-plans included) and every
route write (`reconciler.execute`), so a lost lease stops it at once. An operation Azure already accepted runs
to its end: Azure has no way to cancel it, and the new holder re-observes before it writes (and waits while the
policy is Updating).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError as SdkAzureError
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential, WorkloadIdentityCredential
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient

from reconciler.azure.clients import AUTHORITIES

log = structlog.get_logger("amlfw.lease")
LOST_STATUSES = (404, 409, 412)


def lease_credential(kind: str, client_id: str | None, cloud: str) -> TokenCredential:
    """A Microsoft Entra credential for the storage account (when `account_url` is used)."""
    if kind == "managed_identity":
        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    kwargs: dict[str, Any] = {"authority": AUTHORITIES[cloud]}
    if kind == "workload_identity":
        if client_id:
            kwargs["client_id"] = client_id
        return WorkloadIdentityCredential(**kwargs)
    if client_id:
        kwargs["managed_identity_client_id"] = client_id
        kwargs["workload_identity_client_id"] = client_id
    return DefaultAzureCredential(**kwargs)


class BlobLease:
    def __init__(
        self,
        *,
        container: str,
        blob: str,
        duration: int,
        account_url: str | None = None,
        connection_string: str | None = None,
        credential: TokenCredential | None = None,
        on_acquired: Callable[[], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 15 <= duration <= 60:
            raise ValueError("a blob lease lasts 15 to 60 seconds")
        self.container, self.blob, self.duration = container, blob, duration
        self.holder = f"{socket.gethostname()}/{os.getpid()}"
        self.lease_id = str(uuid.uuid4())
        self._margin = max(2.0, duration * 0.2)
        self._renew_every = duration / 3.0
        self._acquire_every = duration / 6.0
        self._clock = clock
        self._on_acquired, self._on_lost = on_acquired, on_lost
        options: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": max(5, duration // 3)}
        if connection_string is not None:
            self._service = BlobServiceClient.from_connection_string(connection_string, **options)
        elif account_url is not None:
            self._service = BlobServiceClient(account_url, credential=credential, **options)
        else:
            raise ValueError("give account_url or connection_string")
        self._blob: BlobClient = self._service.get_blob_client(container, blob)
        self._lease = BlobLeaseClient(self._blob, lease_id=self.lease_id)
        self._lock = threading.Lock()
        self._held = False
        self._valid_until = 0.0
        self._blob_ready = False
        self._passive_logged = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amlfw-lease", daemon=True)

    # ------------------------------------------------------------------------------------------ public

    def start(self) -> BlobLease:
        self._try_acquire()
        self._thread.start()
        return self

    @property
    def held(self) -> bool:
        with self._lock:
            return self._held

    def may_write(self) -> bool:
        with self._lock:
            return self._held and self._clock() < self._valid_until

    def stop(self, *, release: bool) -> bool:
        """Stop renewing; release the lease if asked and held. True when it was released."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.duration)
        released = False
        if release and self.held:
            try:
                self._lease.release()
                released = True
                log.info("lease.released", container=self.container, blob=self.blob, holder=self.holder)
            except (SdkAzureError, OSError) as exc:
                log.warning("lease.release_failed", error=_describe(exc),
                            note="the lease expires by itself after its duration")
            with self._lock:
                self._held = False
        self._service.close()
        return released

    # ------------------------------------------------------------------------------------------ loop

    def _run(self) -> None:
        while True:
            wait = self._renew_every if self.held else self._acquire_every
            if self._stop.wait(wait):
                return
            try:
                if self.held:
                    self._renew()
                else:
                    self._try_acquire()
            except Exception as exc:  # noqa: BLE001 - the lease thread must survive anything
                log.error("lease.error", error=_describe(exc))

    def _ensure_blob(self) -> None:
        if self._blob_ready:
            return
        with contextlib.suppress(ResourceExistsError):
            self._service.get_container_client(self.container).create_container()
        with contextlib.suppress(ResourceExistsError):
            self._blob.upload_blob(b"", overwrite=False)
        self._blob_ready = True

    def _try_acquire(self) -> bool:
        started = self._clock()
        try:
            self._ensure_blob()
            self._lease.acquire(lease_duration=self.duration)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                if not self._passive_logged:
                    log.info("lease.passive", container=self.container, blob=self.blob,
                             reason="another replica holds the lease")
                    self._passive_logged = True
            else:
                log.warning("lease.acquire_failed", error=_describe(exc))
            return False
        except (SdkAzureError, OSError) as exc:
            log.warning("lease.acquire_failed", error=_describe(exc))
            return False
        with self._lock:
            self._held = True
            self._valid_until = started + self.duration - self._margin
        self._passive_logged = False
        log.info("lease.acquired", container=self.container, blob=self.blob, holder=self.holder,
                 duration_s=self.duration)
        try:
            self._blob.set_blob_metadata({"holder": self.holder}, lease=self._lease)
        except (SdkAzureError, OSError) as exc:
            log.debug("lease.metadata_failed", error=_describe(exc))
        if self._on_acquired is not None:
            self._on_acquired()
        return True

    def _renew(self) -> None:
        started = self._clock()
        try:
            self._lease.renew()
        except HttpResponseError as exc:
            if exc.status_code in LOST_STATUSES:
                self._lost(_describe(exc))
                return
            self._renew_failed(exc)
            return
        except (SdkAzureError, OSError) as exc:
            self._renew_failed(exc)
            return
        with self._lock:
            self._valid_until = started + self.duration - self._margin

    def _renew_failed(self, exc: BaseException) -> None:
        expired = not self.may_write()
        log.warning("lease.renew_failed", error=_describe(exc), writes_stopped=expired)

    def _lost(self, reason: str) -> None:
        with self._lock:
            self._held = False
            self._valid_until = 0.0
        self._blob_ready = False  # a 404 means the blob is gone: recreate it before the next acquisition
        log.error("lease.lost", container=self.container, blob=self.blob, reason=reason,
                  effect="writes stopped; this replica is passive until it acquires the lease again")
        if self._on_lost is not None:
            self._on_lost(reason)


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    status = getattr(exc, "status_code", None)
    first = (str(getattr(exc, "message", None) or exc).splitlines() or [type(exc).__name__])[0]
    parts = [f"{type(exc).__name__}: {first}"]
    if status is not None:
        parts.append(f"status={status}")
    if code:
        parts.append(f"code={code}")
    return " ".join(parts)
