"""Secret scrubbing: recall on a planted set, no change to code without secrets, a real-corpus check.

The planted secrets are generated from a seeded RNG at test time (no real-looking token
is committed), each in the code context where people leave it: assignments, annotated
and f-strings, triple quotes, environment writes, positional arguments, dicts, headers,
URLs, notebook magics and shell lines.
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghostframe.trainer.data.corpus import CorpusOptions, build_corpus
from ghostframe.server.inference.source_files.notebooks import notebook_to_python
from ghostframe.trainer.data import scrub_check
from ghostframe.trainer.data.scrub_check import changed_lines, check_folders
from ghostframe.trainer.data.scrubbing import scrub_secrets
from trainer_fixtures import notebook_json

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"


@dataclass
class Planted:
    kind: str
    code: str
    secrets: tuple[str, ...]  # every one must be gone after scrubbing


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    """n random characters of `alphabet`, with a digit and a letter when the alphabet has both."""
    mixed = any(c.isdigit() for c in alphabet) and any(c.isalpha() for c in alphabet)
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(n))
        if not mixed or (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
            return value


def _password(rng: random.Random) -> str:
    return _rand(rng, string.ascii_letters, 6) + str(rng.randint(10, 99)) + rng.choice("!#%&*") + _rand(rng, ALNUM, 3)


def planted_secrets(seed: int = 0) -> list[Planted]:
    """At least 50 secrets of at least 20 kinds, each in a realistic line of code."""
    rng = random.Random(seed)
    out: list[Planted] = []

    def add(kind: str, template: str, *secrets: str, notebook: bool = False) -> None:
        code = template.format(*secrets)
        if notebook:
            code = notebook_to_python(notebook_json([("code", code)]))
        out.append(Planted(kind, code, secrets))

    for _ in range(2):
        pw = _password(rng)
        add("password_annotated", 'db_password: str = "{}"', pw)
        add("password_fstring", 'pwd = f"{{prefix}}{}"', pw)
        add("password_triple_quoted", 'PASSWORD = """{}"""', pw)
        add("password_environ", 'os.environ["PASSWORD"] = "{}"', pw)
        add("password_kwarg", 'conn = psycopg2.connect(host="db", user="etl", password=\'{}\')', pw)
        add("password_dict", 'config = {{"user": "etl", "db_pwd": "{}"}}', pw)
        add("password_default_arg", 'def connect(host, password: str = "{}"):\n    return host', pw)
        add("password_setdefault", 'os.environ.setdefault("API_PASSWORD", "{}")', pw)
        add("password_subscript", 'settings["database"]["password"] = "{}"', pw)
        add("password_compared", 'if password == "{}":\n    login()', pw)
        add("password_dsn_string", 'dsn = "host=db.internal user=etl password={} dbname=sales"', pw)
        add("password_yaml_in_string", 'CONFIG = """\ndatabase:\n  user: etl\n  password: {}\n"""', pw)
        add("notebook_env_magic", "%env AWS_SECRET_ACCESS_KEY={}\nimport boto3", _rand(rng, B64, 40), notebook=True)
        add("notebook_set_env", "%set_env API_PASSWORD={}\nimport pandas as pd", pw, notebook=True)
        add("notebook_shell_export", "!export API_PASSWORD={}\ndf = pd.read_csv('x.csv')", pw, notebook=True)
        add("url_credentials", 'engine = create_engine("postgresql://analyst:{}@db.internal:5432/sales")',
            _rand(rng, ALNUM, 14))
        add("url_empty_user", 'r = redis.Redis.from_url("redis://:{}@cache.internal:6379/0")', _rand(rng, ALNUM, 16))
        add("url_password_with_at_and_slash", 'client = MongoClient("mongodb+srv://admin:{}@cluster0.example.net/db")',
            _rand(rng, ALNUM, 5) + "@/" + _rand(rng, ALNUM, 6))
        add("authorization_bearer", 'headers = {{"Authorization": "Bearer {}"}}', _rand(rng, ALNUM + "._-", 32))
        add("aws_secret_positional", 's3 = boto3.client("s3", "us-east-1", key_id, "{}")', _rand(rng, B64, 40))
        add("aws_secret_kwarg", 'session = boto3.Session(aws_secret_access_key="{}")', _rand(rng, B64, 40))
        add("aws_access_key_id", 'AWS_ACCESS_KEY_ID = "{}"', "AKIA" + _rand(rng, string.ascii_uppercase + "234567", 16))
        add("github_token", 'gh = Github("{}")', "ghp_" + _rand(rng, ALNUM, 36))
        add("gitlab_token", 'gl = gitlab.Gitlab(url, private_token="{}")', "glpat-" + _rand(rng, ALNUM, 20))
        add("openai_key", 'client = OpenAI(api_key="{}")', "sk-proj-" + _rand(rng, ALNUM, 48))
        add("anthropic_key", 'anthropic.Anthropic("{}")', "sk-ant-api03-" + _rand(rng, ALNUM + "-_", 80))
        add("stripe_key", 'stripe.api_key = "{}"', "sk_live_" + _rand(rng, ALNUM, 24))
        add("slack_bot_token", 'app = App(token="{}")', f"xoxb-{rng.randint(10**11, 10**12)}-" + _rand(rng, ALNUM, 24))
        add("slack_app_token", 'SocketModeHandler(app, "{}").start()',
            f"xapp-1-A{rng.randint(10**9, 10**10)}-{rng.randint(10**12, 10**13)}-" + _rand(rng, "0123456789abcdef", 64))
        add("slack_webhook", 'requests.post("https://hooks.slack.com/services/{}", json=msg)',
            f"T{_rand(rng, string.ascii_uppercase + string.digits, 8)}/B{_rand(rng, string.ascii_uppercase + string.digits, 8)}/"
            + _rand(rng, ALNUM, 24))
        add("google_api_key", 'gmaps = googlemaps.Client(key="{}")', "AIza" + _rand(rng, ALNUM + "_-", 35))
        add("huggingface_token", "login('{}')", "hf_" + _rand(rng, ALNUM, 34))
        add("jwt", 'jwt = "{}"', "eyJ" + _rand(rng, ALNUM, 20) + ".eyJ" + _rand(rng, ALNUM, 30) + "." + _rand(rng, ALNUM + "_-", 43))
        body = [_rand(rng, B64, 64) for _ in range(3)]
        add("private_key_pem", 'KEY = """-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n{}\n-----END RSA PRIVATE KEY-----"""', *body)
        body = [_rand(rng, B64, 64) for _ in range(2)]
        add("private_key_without_end", "key = '-----BEGIN PRIVATE KEY-----\\n{}\\n{}\\n'\nx = 1", *body)
        add("sendgrid_key", 'sg = SendGridAPIClient("{}")', "SG." + _rand(rng, ALNUM, 22) + "." + _rand(rng, ALNUM, 43))
        add("npm_token", "# npm config set //registry.npmjs.org/:_authToken {}", "npm_" + _rand(rng, ALNUM, 36))
        add("databricks_token", 'DatabricksSession.builder.remote(host=h, token="{}")', "dapi" + _rand(rng, "0123456789abcdef", 32))
        add("telegram_bot_token", 'bot = telebot.TeleBot("{}")', f"{rng.randint(10**8, 10**9)}:AA" + _rand(rng, ALNUM + "_-", 33))
        add("azure_storage_key", 'conn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};"',
            _rand(rng, B64, 86) + "==")
        add("high_entropy_signing_key", 'signing_key = "{}"', _rand(rng, "0123456789abcdef", 40))
        add("shell_curl_header", '!curl -H "Authorization: Bearer {}" https://api.example.com/v1', _rand(rng, ALNUM, 40),
            notebook=True)
        # Secrets passed without a name, beside a recognised credential; not 40 characters, so
        # the AWS secret-key rule alone does not catch them.
        key_id = "AKIA" + _rand(rng, string.ascii_uppercase + "234567", 16)
        for length in (32, 44):
            secret = _rand(rng, B64, length)
            add("aws_pair_positional", 's3 = boto3.client("s3", "{}", "{}")', key_id, secret)
            add("aws_pair_session", 'session = boto3.Session("{}", "{}")', key_id, secret)
            add("aws_pair_tuple", 'KEY_ID, SECRET = "{}", "{}"', key_id, secret)
            add("aws_pair_multiline_call", 'client = boto3.client(\n    "s3",\n    "{}",\n    "{}",\n    region_name="eu-west-1",\n)',
                key_id, secret)
            add("aws_pair_notebook", 'import boto3\ns3 = boto3.resource("s3", "{}", "{}")\nbucket = s3.Bucket("sales")',
                key_id, secret, notebook=True)
        add("key_beside_named_secret", 'client = pusher.Pusher("1234567", "{}", secret="{}", cluster="eu")',
            _rand(rng, "0123456789abcdef", 20), _password(rng))
    return out


def _leaks(item: Planted) -> list[str]:
    scrubbed, _counts = scrub_secrets(item.code)
    return [secret for secret in item.secrets if secret in scrubbed]


def test_planted_secrets_are_all_scrubbed():
    planted = planted_secrets(0) + planted_secrets(1)
    kinds = {item.kind for item in planted}
    assert len(planted) >= 50 and len(kinds) >= 20
    missed = [(item.kind, item.code) for item in planted if _leaks(item)]
    recall = 1 - len(missed) / len(planted)
    print(f"\nscrubber recall on {len(planted)} planted secrets of {len(kinds)} kinds: {recall:.3f}")
    assert not missed, missed


def test_scrubbed_python_still_compiles():
    for item in planted_secrets(2):
        try:
            compile(item.code, item.kind, "exec")
        except SyntaxError:
            continue  # e.g. a shell line outside a notebook
        scrubbed, _ = scrub_secrets(item.code)
        compile(scrubbed, item.kind, "exec")


def test_untokenizable_text_is_scrubbed_by_the_fallback():
    pw = _password(random.Random(5))
    code = f'print "python 2"\ndb_password: str = "{pw}"\nx = """unterminated\n'
    scrubbed, counts = scrub_secrets(code)
    assert pw not in scrubbed and counts["assigned_secret"] == 1
    assert 'print "python 2"' in scrubbed


# Code without a secret that a careless scrubber would change.
NO_SECRETS = '''\
"""Load the users table.

Parameters
----------
password : str
    The database password, read from the environment.
api_key : str, default=None
    Pass `token=True` to use the cached token, `token=False` to send none.
"""
import getpass
import hashlib
import os

from sklearn.feature_extraction.text import TfidfVectorizer

DB_PASSWORD = os.environ["DB_PASSWORD"]
SECRET_KEY = os.environ.get("SECRET_KEY")
password = getpass.getpass()
token = os.getenv("HF_TOKEN")
api_key = None
PASSWORD_MIN_LENGTH = 8
url = f"postgresql://{user}:{password}@{host}:5432/sales"
local = "postgresql://localhost/sales"
notebook_url = "http://localhost:8888/tree"
vec = TfidfVectorizer(token_pattern=r"(?u)\\b\\w\\w+\\b", lowercase=True)
tokenizer.pad_token = tokenizer.eos_token
special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "[PAD]", "unk_token": "[UNK]"}
headers = {"token_type": "bearer", "Authorization": f"Bearer {token}"}
form = {"password_field": "pwd_input", "SECRET_ENV_VAR": "APP_SECRET"}
HEADER_ACCESS_TOKEN = "X-Access-Token"
EXPIRED_TOKEN = "expired_token"
checksum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
commit = "9fceb02d0ae598e95dc970b74767f19372d61af8"
run_id = "3f2a9c1e-5b7d-4e2a-9c1f-0a1b2c3d4e5f"
key = "lin0.base_layer.weight"
df = df.sort_values(key="species")
columns = ["user", "password", "email"]
df["password"].str.len()
parser.add_argument("--password", help="database password")
parser.add_argument("--api-key", "--key", default=None)
for attr in ("task_type", "token_dim", "num_layers"):
    print(attr)
if not check(password):
    raise ValueError("Wrong password: try again")
logger.info("token=%s", token)
print(f"token={token}")
cache_key = f"{name}-{version}"
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"
s3_path = "s3://bucket/key/prefix/data.parquet"
digest = hashlib.sha256(b"data").hexdigest()
# Bearer tokens are sent in the Authorization header.
# Secrets allow to set secret keys or tokens without hardcoding them.
# See https://pytorch.slack.com/archives/C3PDTEV8E/p1705929610405409
# HF_HUB_DISABLE_IMPLICIT_TOKEN=True to disable
# %env MPLBACKEND=Agg
client = OpenAI(api_key="sk-...")  # your key here
login(token="hf_***")
mask_token = "[MASK]"
default_metavalue_token = "NULL"
verdict = {"pass": str(value).lower() == "yes", "user": user == "admin"}
'''


def _key_id(rng: random.Random) -> str:
    return "AKIA" + _rand(rng, string.ascii_uppercase + "234567", 16)


def test_key_shaped_literals_are_scrubbed_only_beside_a_credential():
    rng = random.Random(11)
    key_id, secret, token = _key_id(rng), _rand(rng, B64, 36), "hf_" + _rand(rng, ALNUM, 34)
    lonely = _rand(rng, B64, 36)  # shaped like a key, with no credential in its statement
    sha = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    code = (
        f's3 = boto3.client("s3", "{key_id}", "{secret}", region_name="eu-west-1", endpoint_url="https://s3.eu-west-1.amazonaws.com")\n'
        f'df = wr.s3.read_csv("s3://sales-bucket/raw/orders_2023.csv", boto3_session=boto3.Session("{key_id}", "{secret}"),\n'
        f'                    usecols=["CustomerID2023Q1", "order_date", "AnnualIncomeUSD"], sep=";")\n'
        f'model = AutoModel.from_pretrained("HuggingFaceTB/SmolLM2-360M-Instruct", "AutoModelForSeq2SeqLM", token="{token}")\n'
        f'path = hf_hub_download("EleutherAI/gpt-neo-125m", "data/train-00000-of-00001.parquet", revision="{sha}", token="{token}")\n'
        f'image = decode("{png}", "/home/analyst/projects/churn_2023/models/xgb_v2.pkl", "{key_id}")\n'
        f'nonce = make_nonce("{lonely}")\n'
        f'checksum = verify("{sha}", ["{lonely}"])\n'
    )
    compile(code, "beside", "exec")
    scrubbed, counts = scrub_secrets(code)
    for gone in (key_id, secret, token):
        assert gone not in scrubbed
    assert counts["beside_credential"] == 2  # the two positional secrets, nothing else
    kept = ["s3", "eu-west-1", "https://s3.eu-west-1.amazonaws.com", "s3://sales-bucket/raw/orders_2023.csv",
            "CustomerID2023Q1", "order_date", "AnnualIncomeUSD", ";", "HuggingFaceTB/SmolLM2-360M-Instruct",
            "AutoModelForSeq2SeqLM", "EleutherAI/gpt-neo-125m", "data/train-00000-of-00001.parquet", png,
            "/home/analyst/projects/churn_2023/models/xgb_v2.pkl"]
    for literal in kept:
        assert f'"{literal}"' in scrubbed, literal
    assert scrubbed.count(sha) == 2  # given to `revision=`, and in a statement without a credential
    assert scrubbed.count(lonely) == 2


def test_untokenizable_text_scrubs_a_secret_beside_a_credential():
    rng = random.Random(12)
    key_id, secret, other = _key_id(rng), _rand(rng, B64, 32), _rand(rng, B64, 32)
    sha = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    code = f'print "python 2"\ns3 = boto3.client("s3", "{key_id}", "{secret}", rev="{sha}")\nnonce = make("{other}")\n'
    scrubbed, counts = scrub_secrets(code)
    assert secret not in scrubbed and key_id not in scrubbed and counts["beside_credential"] == 1
    assert sha in scrubbed and other in scrubbed and 'print "python 2"' in scrubbed


def test_code_without_secrets_is_left_alone():
    compile(NO_SECRETS, "no_secrets", "exec")
    assert changed_lines(NO_SECRETS) == []
    scrubbed, counts = scrub_secrets(NO_SECRETS)
    assert scrubbed == NO_SECRETS and not counts


def test_notebook_secrets_never_reach_the_training_data(tmp_path):
    rng = random.Random(9)
    pw, aws = _password(rng), _rand(rng, B64, 40)
    key_id, secret = _key_id(rng), _rand(rng, B64, 36)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "explore.ipynb").write_text(notebook_json([
        ("code", f"%env AWS_SECRET_ACCESS_KEY={aws}\n!export API_PASSWORD={pw}\nimport pandas as pd"),
        ("code", f'db_password: str = "{pw}"\ndf = pd.read_sql("select 1", f"postgresql://me:{pw}@db/x")'),
        ("code", f's3 = boto3.client("s3", "{key_id}", "{secret}")\ndf = pd.read_csv("s3://sales/orders.csv")'),
    ]))
    report = build_corpus(tmp_path / "data", [repo], options=CorpusOptions(valid_fraction=0.0))
    written = (tmp_path / "data" / "train.jsonl").read_text()
    assert pw not in written and aws not in written and key_id not in written and secret not in written
    assert "s3://sales/orders.csv" in written
    found = report.to_dict()["secrets_scrubbed"]
    assert sum(found.values()) == 6 and found["beside_credential"] == 1


def _real_corpus() -> Path | None:
    """GHOSTFRAME_SCRUB_CORPUS, or imbalanced-learn where ../shared/corpora/fetch.sh puts it."""
    configured = os.environ.get("GHOSTFRAME_SCRUB_CORPUS")
    if configured:
        return Path(configured)
    default = Path.home() / ".cache" / "ghostframe-corpora" / "imbalanced_learn__0.14.2"
    return default if (default / ".complete").is_file() else None


def test_real_corpus_has_no_line_changed():
    """imbalanced-learn holds no secret, so scrubbing it must change no line.

    Fetch it with `bash ../shared/corpora/fetch.sh` (or point GHOSTFRAME_SCRUB_CORPUS at any folder
    of code known to hold no secret).
    """
    corpus = _real_corpus()
    if corpus is None:
        pytest.skip("real corpus not fetched: run `bash ../shared/corpora/fetch.sh` (the synthetic "
                    "false-positive set above still ran)")
    key_shaped: list = []
    files, lines, changed = check_folders([corpus], key_shaped=key_shaped)
    print(f"\n{corpus}: {files} files, {lines} lines, {len(changed)} changed by scrubbing, "
          f"{len(key_shaped)} key-shaped literals given to no name")
    assert files > 100
    assert changed == [], "\n".join(f"{c.path}:{c.line}: {c.before.strip()} -> {c.after.strip()}" for c in changed)
    # Even beside a credential, none of its literals would be taken for a key.
    assert key_shaped == []


def test_scrub_check_reports_kinds_and_key_shaped_literals(tmp_path, capsys):
    rng = random.Random(13)
    key_id, secret, lonely = _key_id(rng), _rand(rng, B64, 36), _rand(rng, B64, 36)
    (tmp_path / "load.py").write_text(f'import boto3\ns3 = boto3.client("s3", "{key_id}", "{secret}")\nx = f("{lonely}")\n')
    assert scrub_check.main(["--key-shaped", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "secrets found: aws_access_key_id 1, beside_credential 1" in out
    assert f"load.py:3: key-shaped literal '{lonely}'" in out and f"load.py:2: key-shaped literal '{secret}'" in out
    assert "1 files, 4 lines, 1 lines changed by scrubbing" in out
    with pytest.raises(SystemExit):
        scrub_check.main([str(tmp_path / "missing")])
    assert "not a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- private keys


def _der_base64(rng: random.Random, size: int, prefix: bytes = b"") -> str:
    """Base64 of `size` bytes starting like a DER sequence (`MII…`), or with `prefix`."""
    head = prefix or b"\x30\x82" + (size - 4).to_bytes(2, "big")
    return base64.b64encode(head + rng.randbytes(size - len(head))).decode()


def _pem(label: str, body: str, width: int = 64, headers: str = "") -> str:
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return f"-----BEGIN {label}-----\n{headers}" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _shaped_keys(rng: random.Random) -> dict[str, str]:
    """Keys shaped as OpenSSL and ssh-keygen write them, with short last lines (4 characters, or
    only the '==' of the padding) where the old END branch gave up."""
    openssh = b"openssh-key-v1\x00\x00\x00\x00\x04none"
    return {
        "rsa": _pem("RSA PRIVATE KEY", _der_base64(rng, 913)),  # 1220 characters: last line 'xx=='
        "ec": _pem("EC PRIVATE KEY", _der_base64(rng, 121)),
        "pkcs8": _pem("PRIVATE KEY", _der_base64(rng, 51)),  # 68 characters: a last line of 4, unpadded
        "encrypted_pkcs8": _pem("ENCRYPTED PRIVATE KEY", _der_base64(rng, 723)),
        "encrypted_rsa": _pem("RSA PRIVATE KEY", _der_base64(rng, 609),
                              headers=f"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{rng.randbytes(16).hex().upper()}\n\n"),
        "openssh": _pem("OPENSSH PRIVATE KEY", _der_base64(rng, 400, prefix=openssh), width=70),
        "openssh_padding_line": _pem("OPENSSH PRIVATE KEY", _der_base64(rng, 52, prefix=openssh), width=70),  # 70 + '=='

        "pgp": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n"
        + "\n".join(textwrap.wrap(_der_base64(rng, 300, prefix=b"\x95"), 64))
        + f"\n={base64.b64encode(rng.randbytes(3)).decode()}\n-----END PGP PRIVATE KEY BLOCK-----\n",
    }


def _generated_keys() -> dict[str, str]:
    """Real keys from `cryptography`, where it is installed."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    except ImportError:
        return {}
    pem, traditional, pkcs8 = (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.PrivateFormat.PKCS8)
    plain = serialization.NoEncryption()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    keys = {
        "generated_rsa": rsa_key.private_bytes(pem, traditional, plain),
        "generated_ec": ec_key.private_bytes(pem, traditional, plain),
        "generated_pkcs8": rsa_key.private_bytes(pem, pkcs8, plain),
        "generated_encrypted": ec_key.private_bytes(pem, pkcs8, serialization.BestAvailableEncryption(b"pw")),
        "generated_openssh": ed_key.private_bytes(pem, serialization.PrivateFormat.OpenSSH, plain),
    }
    return {kind: key.decode() for kind, key in keys.items()}


PRIVATE_KEYS = {**_shaped_keys(random.Random(21)), **_generated_keys()}


def _body_lines(pem: str) -> list[str]:
    """Every line of a key but its BEGIN and END lines (base64, headers, checksum)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def _escaped(pem: str) -> str:
    return pem.replace("\n", "\\n")


# (code holding a key, the code as it must come out), for a key in each place people paste one
KEY_PLACES = {
    "triple_quoted": (lambda k: f'KEY = """{k}"""\n', 'KEY = """<PRIVATE_KEY>\n"""\n'),
    "escaped_newlines": (lambda k: f'KEY = "{_escaped(k)}"\n', 'KEY = "<PRIVATE_KEY>\\n"\n'),
    "concatenated_lines": (
        lambda k: "KEY = (\n" + "".join(f'    "{line}\\n"\n' for line in k.splitlines()) + ")\n",
        'KEY = (\n    "<PRIVATE_KEY>\\n"\n)\n',
    ),
    "service_account": (
        lambda k: f'creds = {{"type": "service_account", "private_key": "{_escaped(k)}", "client_email": "etl@sales.iam.gserviceaccount.com"}}\n',
        'creds = {"type": "service_account", "private_key": "<PRIVATE_KEY>\\n", "client_email": "etl@sales.iam.gserviceaccount.com"}\n',
    ),
}


@pytest.mark.parametrize("kind", sorted(PRIVATE_KEYS))
@pytest.mark.parametrize("place", sorted(KEY_PLACES))
def test_a_private_key_is_scrubbed_whole(kind, place):
    key = PRIVATE_KEYS[kind]
    holding, expected = KEY_PLACES[place]
    code = holding(key)
    compile(code, kind, "exec")
    scrubbed, counts = scrub_secrets(code)
    assert [line for line in _body_lines(key) if line in scrubbed] == []
    assert scrubbed == expected  # BEGIN to END, and nothing around it
    assert counts == {"private_key": 1}
    compile(scrubbed, kind, "exec")


@pytest.mark.parametrize("place", ["triple_quoted", "escaped_newlines"])
def test_a_private_key_in_a_notebook_is_scrubbed_whole(place, tmp_path):
    """In the notebook's JSON (each line a JSON string, \\n escapes doubled) and in its code as read."""
    key = _shaped_keys(random.Random(22))["pkcs8"]  # short enough for a line of code (not "minified")
    holding, expected = KEY_PLACES[place]
    raw = notebook_json([("code", "import pandas as pd\n" + holding(key) + "df = pd.read_csv('sales.csv')")])
    scrubbed, counts = scrub_secrets(raw)
    assert [line for line in _body_lines(key) if line in scrubbed] == [] and counts == {"private_key": 1}
    assert notebook_to_python(scrubbed) == notebook_to_python(raw).replace(holding(key), expected)
    code = notebook_to_python(raw)
    assert scrub_secrets(code)[0] == code.replace(holding(key), expected)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "explore.ipynb").write_text(raw)
    build_corpus(tmp_path / "data", [repo], options=CorpusOptions(valid_fraction=0.0))
    written = json.loads((tmp_path / "data" / "train.jsonl").read_text().splitlines()[0])["text"]
    assert [line for line in _body_lines(key) if line in written] == [] and "<PRIVATE_KEY>" in written


@pytest.mark.parametrize("last_line", ["Xw==", "AQAB", "=="])
def test_a_private_key_without_its_end_line_loses_its_short_last_line(last_line):
    body = _der_base64(random.Random(23), 96)
    code = f"key = '-----BEGIN PRIVATE KEY-----\\n{body[:64]}\\n{body[64:]}\\n{last_line}\\n'\nx = 1\n"
    scrubbed, counts = scrub_secrets(code)
    assert scrubbed == "key = '<PRIVATE_KEY>\\n'\nx = 1\n" and counts == {"private_key": 1}


# --------------------------------------------------------------------------- passwords


# A literal given to a password-like name is a secret whatever its length.
SHORT_PASSWORDS = [
    'password = "{}"',
    'pw = "{}"',
    'PASSWORD = "{}"',
    'db_password: str = "{}"',
    'passwd = "{}"',
    'user_pass = "{}"',
    'secret = "{}"',
    'conn = psycopg2.connect(host="db", user="etl", password="{}")',
    'engine = connect(pwd="{}")',
    'config = {{"user": "etl", "password": "{}"}}',
    'settings["database"]["password"] = "{}"',
    'if password == "{}":\n    login()',
    'def connect(host, password="{}"):\n    return host',
]
# Given to a password-like name, and plainly not a secret.
NOT_PASSWORDS = [
    'password = ""', 'PASSWORD = "changeme"', 'password = "xxx"', 'password = "<password>"', 'pw = "your_password"',
    'password = "***"', 'password = "{password}"', 'password = f"{password}"', 'DB_PASSWORD = os.environ["DB_PASSWORD"]',
    'pwd = os.getenv("DB_PWD")', 'password = os.environ.get("PASSWORD", "")', 'PW = "pw"', 'PASSWORD = "password"',
    'conn = connect(password="YOUR_PASSWORD_HERE")', 'cfg = {"password": "%(db_password)s"}',
    'api_key = "abc"',  # not a password: keys and tokens are never this short, so it stands in for one
]


@pytest.mark.parametrize("template", SHORT_PASSWORDS)
@pytest.mark.parametrize("password", ["abc", "a", "x1!", "pass", "Pass@123"])
def test_a_short_password_is_scrubbed(template, password):
    code = template.format(password) + "\n"
    scrubbed, counts = scrub_secrets(code)
    assert scrubbed == code.replace(f'"{password}"', '"<SECRET>"') and counts == {"assigned_secret": 1}
    compile(scrubbed, template, "exec")


@pytest.mark.parametrize("code", NOT_PASSWORDS)
def test_a_password_placeholder_is_kept(code):
    assert scrub_secrets(code + "\n") == (code + "\n", {})


def test_a_short_password_in_a_notebook_magic_is_scrubbed():
    code = notebook_to_python(notebook_json([("code", "%env DB_PASSWORD=abc\nimport pandas as pd")]))
    scrubbed, counts = scrub_secrets(code)
    assert "abc" not in scrubbed and counts == {"assigned_secret": 1}
