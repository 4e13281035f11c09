"""Typed parameters of the fingerprint index. Recorded in every index so queries match builds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FingerprintParams(BaseModel):
    """How code is fingerprinted. Changing any of these needs a rebuild of the index."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Winnowing keeps 2 / (window + 1) of the k-grams and finds every shared run of
    # window + kgram - 1 tokens (24 here). Sparser settings were measured and not taken: 12 / 15
    # stores a quarter fewer postings, and its quick quality table (40 cases a kind and language)
    # stayed within two cases, but on the full cases against the gigabyte attribution fell by
    # 14-19 cases in 1,050 for verbatim, re-indented, renamed and embedded copies, false
    # positives rose from 3.5 to 4.5 %, and queries took 1.8x the CPU (bench/results/
    # gigabyte_window15.json); 14 / 13 and 14 / 15 lose cases on the quick table already.
    kgram: int = Field(14, ge=4, le=64, description="tokens per fingerprinted k-gram")
    window: int = Field(11, ge=1, le=128, description="winnowing window (k-grams)")
    minhash_lines: int = Field(16, ge=4, le=64, description="normalised lines per MinHash window")
    minhash_shingle: int = Field(5, ge=2, le=16, description="tokens per MinHash shingle")
    minhash_bands: int = Field(3, ge=1, le=32)
    minhash_rows: int = Field(6, ge=1, le=32)
    normalizer: int = Field(2, description="version of the normaliser; bumped when it changes")

    @property
    def num_perm(self) -> int:
        return self.minhash_bands * self.minhash_rows


class BuildLimits(BaseModel):
    """Which files a build skips."""

    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(1_000_000, ge=1, description="larger files are skipped")
    max_line_chars: int = Field(1000, ge=10, description="mean line length above which a file is minified")
    segment_bytes: int = Field(64_000_000, ge=1, description="source bytes per committed segment")
