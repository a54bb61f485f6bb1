"""Signed derived URLs: the signature itself (``pymager.signing``), the keys as configured, and the
service's order: a hit is public, a miss needs a valid signature before anything else is looked at."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

import pytest

from pymager.config import URL_KEYS_ENV, ConfigError, Settings, load_settings
from pymager.domain import Mode, Size
from pymager.errors import (
    ImageNotFound,
    PymagerError,
    SignatureInvalid,
    SignatureKeyUnknown,
    SignatureMalformed,
    SignatureRequired,
    SizeNotAllowed,
)
from pymager.signing import SignedPath, UrlKey, UrlSigner, mac, parse_url_keys
from tests.unit.fakes import fake_image
from tests.unit.world import World

REPO = Path(__file__).resolve().parents[2]

# The README's test vector.
VECTOR_KEY = UrlKey("web-2026", b"pymager-test-vector-secret")
VECTOR_PATH = "/derived/sample-200x200-fit.webp"
VECTOR_URL = "/derived/sample-200x200-fit.webp?s=web-2026.tKrKwbksI6_krzpOsWotfC09enYaKjwDLUSntyh9574"

NEW = UrlKey("new", b"the new secret; rotated in")
OLD = UrlKey("old", b"the old secret; retiring soon")
PATH = "/derived/sample-10x10.png"


def signed(target: str) -> SignedPath:
    return SignedPath.from_target(target)


def signature_of(key: UrlKey, path: str) -> str:
    return f"{key.key_id}.{mac(key.secret, path)}"


# -- the signature ------------------------------------------------------------------------------


def test_the_readme_test_vector_is_what_the_code_computes() -> None:
    assert UrlSigner([VECTOR_KEY]).sign(VECTOR_PATH) == VECTOR_URL
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for stated in (VECTOR_KEY.key_id, VECTOR_KEY.secret.decode(), VECTOR_PATH, VECTOR_URL):
        assert f"`{stated}`" in readme, stated


def test_the_mac_is_unpadded_base64url_of_hmac_sha256_of_the_path() -> None:
    digest = hmac.new(VECTOR_KEY.secret, VECTOR_PATH.encode(), hashlib.sha256).digest()
    assert mac(VECTOR_KEY.secret, VECTOR_PATH) == base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_a_signed_url_verifies() -> None:
    UrlSigner([VECTOR_KEY]).verify(signed(VECTOR_URL))


def test_the_first_key_signs_and_every_configured_key_verifies() -> None:
    signer = UrlSigner([NEW, OLD])
    assert signer.sign(PATH) == f"{PATH}?s={signature_of(NEW, PATH)}"
    for key in (NEW, OLD):
        signer.verify(signed(f"{PATH}?s={signature_of(key, PATH)}"))


def test_a_retired_key_no_longer_verifies() -> None:
    with pytest.raises(SignatureKeyUnknown, match="'old'"):
        UrlSigner([NEW]).verify(signed(f"{PATH}?s={signature_of(OLD, PATH)}"))


def test_the_mac_of_another_key_under_this_key_id_is_invalid() -> None:
    forged = f"new.{mac(OLD.secret, PATH)}"
    with pytest.raises(SignatureInvalid):
        UrlSigner([NEW, OLD]).verify(signed(f"{PATH}?s={forged}"))


@pytest.mark.parametrize(
    "target",
    [PATH, f"{PATH}?", f"{PATH}?x=1", f"{PATH}?S=new.abc", f"{PATH}?sig=new.abc"],
    ids=["no-query", "empty-query", "other-parameter", "upper-case-S", "other-name"],
)
def test_no_s_parameter_is_signature_required(target: str) -> None:
    with pytest.raises(SignatureRequired):
        UrlSigner([NEW]).verify(signed(target))


def test_nothing_presented_is_signature_required() -> None:
    with pytest.raises(SignatureRequired):
        UrlSigner([NEW]).verify(None)


GOOD = mac(NEW.secret, PATH)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "new",
        f"new{GOOD}",
        f".{GOOD}",
        f"new.{GOOD}=",  # padded
        f"new.{GOOD[:-1]}",  # too short
        f"new.{GOOD}A",  # too long
        f"new.{GOOD[:-1]}+",  # standard base64, not base64url
        f"new.{GOOD[:-1]}/",
        f"new.{GOOD[:-3]}%2D",  # percent-encoded
        f"new.{GOOD[:-1]}!",
        f"{'k' * 33}.{GOOD}",  # key id too long
        f"n w.{GOOD}",
    ],
    ids=[
        "empty",
        "key-id-only",
        "no-dot",
        "no-key-id",
        "padded",
        "short",
        "long",
        "plus",
        "slash",
        "percent",
        "garbled",
        "long-key-id",
        "bad-key-id",
    ],
)
def test_a_garbled_signature_is_malformed(value: str) -> None:
    with pytest.raises(SignatureMalformed):
        UrlSigner([NEW]).verify(signed(f"{PATH}?s={value}"))


def test_a_wrong_mac_is_invalid() -> None:
    wrong = ("A" if GOOD[0] != "A" else "B") + GOOD[1:]
    with pytest.raises(SignatureInvalid):
        UrlSigner([NEW]).verify(signed(f"{PATH}?s=new.{wrong}"))


def test_a_non_canonical_encoding_of_the_right_mac_is_invalid() -> None:
    """43 base64url characters carry 258 bits: the last character's two spare bits must be zero, so
    that one image has exactly one signed URL."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(GOOD[-1])
    twin = GOOD[:-1] + alphabet[last ^ 1]
    assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(GOOD + "=")
    with pytest.raises(SignatureInvalid):
        UrlSigner([NEW]).verify(signed(f"{PATH}?s=new.{twin}"))


@pytest.mark.parametrize(
    "path",
    [
        "/derived/sample-20x20.png",
        "/derived/sample-10x10.jpg",
        "/derived/other-10x10.png",
        "//derived/sample-10x10.png",
    ],
)
def test_the_signature_of_another_path_is_invalid(path: str) -> None:
    with pytest.raises(SignatureInvalid):
        UrlSigner([NEW]).verify(signed(f"{path}?s={signature_of(NEW, PATH)}"))


def test_the_path_is_signed_as_sent_percent_encoding_included() -> None:
    encoded = "/derived/sample%2D10x10.png"
    assert signed(f"{encoded}?s=x").path == encoded
    signer = UrlSigner([NEW])
    signer.verify(signed(f"{encoded}?s={signature_of(NEW, encoded)}"))
    with pytest.raises(SignatureInvalid):  # signed decoded, sent encoded
        signer.verify(signed(f"{encoded}?s={signature_of(NEW, PATH)}"))
    with pytest.raises(SignatureInvalid):  # and the other way round
        signer.verify(signed(f"{PATH}?s={signature_of(NEW, encoded)}"))


def test_several_s_parameters_are_malformed_even_if_one_is_valid() -> None:
    valid = signature_of(NEW, PATH)
    for query in (f"s={valid}&s={valid}", f"s={valid}&s=new.{'A' * 43}", f"s=&s={valid}"):
        with pytest.raises(SignatureMalformed, match="one s parameter, not 2"):
            UrlSigner([NEW]).verify(signed(f"{PATH}?{query}"))


@pytest.mark.parametrize("query", ["w=1&s={s}", "s={s}&w=1", "a=%ff&s={s}&b", "utm_source=x&s={s}&dpr=2"])
def test_other_parameters_beside_the_signature_are_ignored(query: str) -> None:
    UrlSigner([NEW]).verify(signed(f"{PATH}?{query.format(s=signature_of(NEW, PATH))}"))


def test_the_path_ends_at_the_first_question_mark() -> None:
    assert signed(f"{PATH}?s=a?b&s=c").path == PATH
    assert signed(f"{PATH}?s=a?b&s=c").signatures == ("a?b", "c")


def test_an_absolute_form_target_and_a_mount_point_leave_the_derived_path() -> None:
    assert signed(f"http://images.example:8080{PATH}?s=x") == SignedPath(PATH, ("x",))
    assert SignedPath.from_target(f"/images{PATH}?s=x", "/images") == SignedPath(PATH, ("x",))


# -- the keys -----------------------------------------------------------------------------------


def test_url_keys_parse_in_order_the_first_signs() -> None:
    keys = parse_url_keys(" new : the new secret; rotated in ,old:the old secret: retiring soon ")
    assert keys == (NEW, UrlKey("old", b"the old secret: retiring soon"))  # a secret may hold a colon
    assert parse_url_keys("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("only-a-long-secret-without-an-id", "entry 1 is not <key-id>:<secret>"),
        ("ok:0123456789abcdef, bad id:0123456789abcdef", "entry 2 is not <key-id>:<secret>"),
        (f"{'k' * 33}:0123456789abcdef", "entry 1 is not <key-id>:<secret>"),
        ("short:0123456789abcde", "the secret of key 'short' is shorter than 16 bytes"),
        ("empty:", "the secret of key 'empty' is shorter than 16 bytes"),
        ("k:0123456789abcdef, k:fedcba9876543210", "key id 'k' is given twice"),
    ],
)
def test_a_bad_url_key_is_named_without_its_secret(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        parse_url_keys(text)
    for secret in ("0123456789abcde", "fedcba9876543210", "only-a-long-secret"):
        assert secret not in str(raised.value)


def test_a_key_never_shows_its_secret() -> None:
    settings = Settings.for_directory(Path("d"), url_keys=(NEW,))
    assert "rotated" not in repr(NEW)
    assert "rotated" not in repr(settings)


def _ini(directory: Path, url_keys: str) -> Path:
    path = directory / "pymager.ini"
    path.write_text(f"[auth]\nurl_keys = {url_keys}\n", encoding="utf-8")
    return path


def test_url_keys_are_read_from_the_configuration(tmp_path: Path) -> None:
    path = _ini(tmp_path, "new:the new secret; rotated in, old:the old secret; retiring soon")
    assert load_settings(path, environ={}).url_keys == (NEW, OLD)


def test_the_environment_replaces_the_configured_keys(tmp_path: Path) -> None:
    path = _ini(tmp_path, "old:the old secret; retiring soon")
    assert load_settings(path, environ={URL_KEYS_ENV: "new:the new secret; rotated in"}).url_keys == (NEW,)
    assert load_settings(path, environ={URL_KEYS_ENV: "  "}).url_keys == (OLD,)  # blank: not set


def test_a_bad_key_in_the_configuration_stops_start_up_on_one_line_without_the_secret(tmp_path: Path) -> None:
    path = _ini(tmp_path, "good:0123456789abcdef, weak:hunter2")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    message = str(raised.value)
    assert "\n" not in message
    assert "[auth] url_keys = <redacted> is invalid: the secret of key 'weak' is shorter than 16" in message
    assert "hunter2" not in message
    assert "0123456789abcdef" not in message


def test_a_bad_key_in_the_environment_names_the_variable_without_the_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(_ini(tmp_path, ""), environ={URL_KEYS_ENV: "weak:hunter2"})
    assert str(raised.value) == (
        "$PYMAGER_URL_KEYS = <redacted> is invalid: the secret of key 'weak' is shorter than 16 bytes"
    )


# -- the service: a hit is public, a miss needs a valid signature first ---------------------------


def signed_world(**overrides: object) -> World:
    world = World(url_keys=(NEW, OLD), **overrides)
    world.upload("sample", fake_image())
    return world


def request(path: str, key: UrlKey | None = None) -> SignedPath:
    return SignedPath(path, () if key is None else (signature_of(key, path),))


@pytest.mark.parametrize("key", [NEW, OLD], ids=["new", "old"])
def test_a_signed_miss_is_generated_under_its_path_alone(key: UrlKey) -> None:
    world = signed_world()
    stored = world.service.derived_file("sample-10x10.png", request(PATH, key))
    assert stored.size > 0
    assert len(world.processor.derive_calls) == 1
    assert [name for name in world.blobs.files if "10x10" in name] == ["derived/sample/10x10.png"]


@pytest.mark.parametrize(
    ("signed_path", "error"),
    [
        (None, SignatureRequired),
        (request(PATH), SignatureRequired),
        (SignedPath(PATH, (f"new.{GOOD}=",)), SignatureMalformed),
        (SignedPath(PATH, (f"gone.{GOOD}",)), SignatureKeyUnknown),
        (SignedPath(PATH, (signature_of(NEW, "/derived/sample-20x20.png"),)), SignatureInvalid),
    ],
    ids=["nothing", "no-s", "padded", "unknown-key", "other-path"],
)
def test_an_unsigned_miss_generates_nothing(
    signed_path: SignedPath | None, error: type[PymagerError]
) -> None:
    world = signed_world()
    with pytest.raises(error):
        world.service.derived_file("sample-10x10.png", signed_path)
    assert world.processor.derive_calls == []
    assert world.registry.tables.derived == {}
    assert not world.blobs.temporary


def test_a_hit_is_served_signed_or_not() -> None:
    world = signed_world()
    made = world.service.derived_file("sample-10x10.png", request(PATH, NEW)).file.read()
    assert world.service.derived_file("sample-10x10.png").file.read() == made
    assert world.service.derived_file("sample-10x10.png", SignedPath(PATH, ("garbage",))).file.read() == made
    assert len(world.processor.derive_calls) == 1


def test_the_signature_is_checked_before_the_size_and_the_original() -> None:
    world = signed_world(allowed_sizes=frozenset({(Size(10, 10), Mode.FILL)}))
    with pytest.raises(SignatureRequired):
        world.service.derived_file("sample-20x20.png", request("/derived/sample-20x20.png"))
    with pytest.raises(SignatureRequired):
        world.service.derived_file("sample-5000x10.png", request("/derived/sample-5000x10.png"))
    with pytest.raises(SignatureRequired):
        world.service.derived_file("missing-10x10.png", request("/derived/missing-10x10.png"))
    with pytest.raises(SizeNotAllowed):
        world.service.derived_file("sample-20x20.png", request("/derived/sample-20x20.png", NEW))
    with pytest.raises(ImageNotFound):
        world.service.derived_file("missing-10x10.png", request("/derived/missing-10x10.png", NEW))


def test_without_url_keys_a_signature_is_neither_needed_nor_looked_at() -> None:
    world = World(allowed_sizes=frozenset({(Size(10, 10), Mode.FILL)}))
    world.upload("sample", fake_image())
    assert world.service.derived_file("sample-10x10.png", SignedPath(PATH, ("garbage",))).size > 0
    with pytest.raises(SizeNotAllowed):  # today's order: the size first
        world.service.derived_file("missing-20x20.png")
