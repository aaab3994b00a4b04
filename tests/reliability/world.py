"""Real systems with canaries for the reliability suite, and snapshots that prove "nothing lost".

A :class:`World` is a folder (file stores, evidence, spec files) plus, where asked, an S3 bucket
on the session's moto server. Canaries sit beside every prefix with names that share it as a
string (``victim`` next to ``victimx``, ``victim-old``, ``victim.bin``) and elsewhere in the
bucket. :func:`snapshot` records every file (path and SHA-256) and every S3 version and delete
marker, so a test compares the whole state before and after an operation that must change
nothing, or checks that only the in-scope part changed.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sundown import registry
from sundown.envelope import Artifact, encrypt_to_store

CANARY_SIBLINGS = ("{name}x", "{name}-old", "{name}.bak")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def s3_client() -> Any:
    """A boto3 client for moto from the environment (moto_env / the world's env)."""
    import boto3

    return boto3.client("s3")


def s3_versions(bucket: str, prefix: str = "") -> dict[tuple[str, str, str], str]:
    """Every version and delete marker: (key, version id, kind) -> etag ("" for markers)."""
    s3 = s3_client()
    out: dict[tuple[str, str, str], str] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            out[(v["Key"], v["VersionId"], "version")] = v["ETag"]
        for m in page.get("DeleteMarkers", []):
            out[(m["Key"], m["VersionId"], "marker")] = ""
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    for u in uploads.get("Uploads", []):
        out[(u["Key"], u["UploadId"], "upload")] = ""
    return out


def file_tree(root: Path) -> dict[str, str]:
    """Every file under ``root``: relative path -> SHA-256 (temp files included)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): sha256(p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class Snapshot:
    files: dict[str, str]
    s3: dict[str, dict[tuple[str, str, str], str]]
    keys: dict[str, str]

    def diff(self, other: Snapshot) -> list[str]:
        """Human-readable differences (empty when equal)."""
        out: list[str] = []
        for name, a, b in (("file", self.files, other.files), ("key", self.keys, other.keys)):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    out.append(f"{name} {k}: {a.get(k)} -> {b.get(k)}")
        for bucket in sorted(set(self.s3) | set(other.s3)):
            a3, b3 = self.s3.get(bucket, {}), other.s3.get(bucket, {})
            for k3 in sorted(set(a3) | set(b3)):
                if a3.get(k3) != b3.get(k3):
                    out.append(f"s3://{bucket} {k3}: {a3.get(k3)} -> {b3.get(k3)}")
        return out


@dataclass
class World:
    """A folder of stores plus optional S3 buckets, with canaries."""

    root: Path
    home: Path
    buckets: list[str] = field(default_factory=list)
    canary_files: dict[Path, str] = field(default_factory=dict)
    canary_objects: dict[tuple[str, str], str] = field(default_factory=dict)  # (bucket,key)->etag

    @property
    def stores(self) -> Path:
        return self.root / "stores"

    def snapshot(self, *, with_keys: bool = True) -> Snapshot:
        keys = file_tree(self.home / "keys") if with_keys else {}
        return Snapshot(
            files=file_tree(self.stores),
            s3={b: s3_versions(b) for b in self.buckets},
            keys=keys,
        )

    # -- canaries -----------------------------------------------------------------------------

    def plant_file_canaries(self, part: str, name: str) -> None:
        base = self.stores / part
        for sibling in CANARY_SIBLINGS:
            path = base / sibling.format(name=name) / "canary.bin"
            self._canary_file(path)
        self._canary_file(base / f"{name}x.bin")

    def _canary_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(48)
        path.write_bytes(data)
        self.canary_files[path] = sha256(data)

    def plant_s3_canaries(self, bucket: str, prefix: str) -> None:
        """Canaries beside ``prefix`` (sharing it as a string) and at the bucket root; each
        with two versions so a purge of "all versions" would show."""
        s3 = s3_client()
        keys = [f"{prefix}{s.format(name='')}/canary" for s in CANARY_SIBLINGS]
        keys += [f"{prefix}.bin", "canary-at-root", "elsewhere/canary"]
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=b"old " + key.encode())
            out = s3.put_object(Bucket=bucket, Key=key, Body=b"canary " + key.encode())
            self.canary_objects[(bucket, key)] = out["ETag"]

    def canaries_intact(self) -> list[str]:
        """The canaries that changed or vanished (empty when all are intact)."""
        bad = [
            str(p)
            for p, digest in self.canary_files.items()
            if not p.exists() or sha256(p.read_bytes()) != digest
        ]
        by_bucket: dict[str, dict[tuple[str, str, str], str]] = {}
        for (bucket, key), etag in self.canary_objects.items():
            if bucket not in by_bucket:
                by_bucket[bucket] = s3_versions(bucket)
            versions = [
                (vid, tag)
                for (k, vid, kind), tag in by_bucket[bucket].items()
                if k == key and kind == "version"
            ]
            # two versions each, the newer one the planted etag (order: newest first)
            if len(versions) != 2 or etag not in {t for _, t in versions}:
                bad.append(f"s3://{bucket}/{key}")
            markers = [1 for (k, _, kind) in by_bucket[bucket] if k == key and kind == "marker"]
            if markers:
                bad.append(f"s3://{bucket}/{key} (delete marker)")
        return bad


def make_bucket(name: str, *, versioned: bool = True, object_lock: bool = False) -> str:
    s3 = s3_client()
    if object_lock:
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    else:
        s3.create_bucket(Bucket=name)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def encrypt_files(
    url: str, kek_uri: str, system: str, files: Mapping[str, bytes], version: str = "v1"
) -> None:
    """Envelope-encrypt ``files`` into the store at ``url`` (sidecars beside them)."""
    store = registry.open_store(url)
    kek = registry.open_key_service(kek_uri)
    for name, data in files.items():
        encrypt_to_store(
            io.BytesIO(data), store, name, kek, Artifact(system=system, path=name, version=version)
        )


def put_versions(bucket: str, prefix: str, names: Iterable[str], versions: int = 2) -> None:
    """Objects with several versions each, plus one delete marker, under ``prefix``."""
    s3 = s3_client()
    for name in names:
        for i in range(versions):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=os.urandom(100 + i))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/deleted.txt", Body=b"gone")
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/deleted.txt")
