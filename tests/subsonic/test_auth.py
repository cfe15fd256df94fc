"""Authentication: token+salt, plain and enc: passwords, API keys, and their error codes."""

import libopensonic
import pytest

from conftest import ADMIN, ALICE, fresh_source


def test_ping_token_auth_with_libopensonic(server, admin_conn):
    assert admin_conn.ping() is True


def test_ping_legacy_auth_with_libopensonic(server):
    c = server.connection(ALICE, legacy=True)
    try:
        assert c.ping() is True
    finally:
        c.cleanup()


def test_ping_api_key_with_libopensonic(server):
    c = server.connection(ALICE, api_key=True)
    try:
        assert c.ping() is True
        assert c.get_user(ALICE).username == ALICE
    finally:
        c.cleanup()


@pytest.mark.parametrize("how", ["token", "plain", "enc", "apikey"])
def test_ping_every_auth_form(server, how):
    body = server.call("ping", user=ALICE, how=how)
    assert body["status"] == "ok"


def test_wrong_password_is_40(server):
    err = server.error("ping", extra={"u": ALICE, "p": "not-the-password"}, how="none")
    assert err["code"] == 40, err
    err = server.error("ping", extra={"u": ALICE, "s": "abcdef", "t": "0" * 32}, how="none")
    assert err["code"] == 40, err


def test_unknown_user_is_40(server):
    err = server.error("ping", extra={"u": "nobody", "p": "whatever"}, how="none")
    assert err["code"] == 40, err


def test_wrong_password_through_libopensonic(server):
    import asyncio

    import aiohttp

    c = libopensonic.Connection("http://127.0.0.1", username=ALICE, password="wrong", port=server.port,
                                server_path="")

    async def session_from_fresh_address():
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(fresh_source(), 0)))

    c._async._sess = asyncio.run_coroutine_threadsafe(session_from_fresh_address(), c._loop).result()
    try:
        with pytest.raises(libopensonic.errors.CredentialError):
            c.ping()
    finally:
        c.cleanup()


def test_api_key_with_username_is_43(server):
    err = server.error("ping", how="apikey", user=ALICE, extra={"u": ALICE})
    assert err["code"] == 43, err


def test_bad_api_key_is_44(server):
    err = server.error("ping", how="none", extra={"apiKey": "definitely-not-a-key"})
    assert err["code"] == 44, err


def test_missing_credentials_is_10(server):
    err = server.error("ping", how="none")
    assert err["code"] == 10, err


def test_user_without_password_or_token_is_10(server):
    err = server.error("ping", how="none", extra={"u": ALICE})
    assert err["code"] == 10, err


def test_token_without_salt_is_10(server):
    err = server.error("ping", how="none", extra={"u": ALICE, "t": "0" * 32})
    assert err["code"] == 10, err


def test_missing_required_parameter_is_10(server):
    err = server.error("getAlbum")
    assert err["code"] == 10, err
    err = server.error("getSong")
    assert err["code"] == 10, err


def test_unknown_id_is_70(server):
    err = server.error("getAlbum", {"id": "no-such-album"})
    assert err["code"] == 70, err
    err = server.error("getSong", {"id": "no-such-song"})
    assert err["code"] == 70, err


def test_revoked_key_is_44(server):
    key = server.cli("user", "key", ALICE, "--label", "short-lived").strip()
    assert server.call("ping", how="none", extra={"apiKey": key})["status"] == "ok"
    assert "short-lived" in server.cli("user", "key", ALICE, "--list")
    server.cli("user", "key", ALICE, "--revoke", "short-lived")
    err = server.error("ping", how="none", extra={"apiKey": key})
    assert err["code"] == 44, err


def test_password_change_with_cli(server, tmp_path):
    server.add_user("carol", "first-password")
    server.passwords["carol"] = "first-password"
    assert server.call("ping", user="carol")["status"] == "ok"
    pw = tmp_path / "pw"
    pw.write_text("second-password\n")
    server.cli("user", "passwd", "carol", "--password-file", str(pw))
    assert server.error("ping", user="carol")["code"] == 40  # the old password
    server.passwords["carol"] = "second-password"
    assert server.call("ping", user="carol")["status"] == "ok"
    assert "carol" in server.cli("user", "list")
    server.cli("user", "rm", "carol")
    assert server.error("ping", user="carol")["code"] == 40
    assert "carol" not in server.cli("user", "list")


def test_get_user_admin_and_normal(server):
    u = server.call("getUser", {"username": ADMIN})["user"]
    assert u["username"] == ADMIN and u["adminRole"] is True
    u = server.call("getUser", {"username": ALICE}, user=ALICE)["user"]
    assert u["username"] == ALICE and u["adminRole"] is False
    assert u["streamRole"] is True


def test_normal_user_cannot_read_another_user(server):
    err = server.error("getUser", {"username": ADMIN}, user=ALICE)
    assert err["code"] == 50, err


def test_failed_sign_ins_are_bounded_per_account_and_address(server):
    """After a burst of wrong passwords for one account, that account is refused for a while
    even with the right password, but never as a wrong password (error 0, saying why, not 40);
    other accounts on the same address sign in. An address guessing many accounts is bounded
    too."""
    target, password = "bounded", "the-right-one"
    server.add_user(target, password)
    server.passwords[target] = password
    attacker = fresh_source()
    codes = [server.error("ping", extra={"u": target, "p": "guess-%d" % i}, how="none", source=attacker)["code"]
             for i in range(10)]
    assert set(codes) == {40}, codes
    err = server.error("ping", extra={"u": target, "p": password}, how="none", source=fresh_source())
    assert err["code"] == 0 and "account" in err["message"], "the right password of a stopped account: %s" % err
    assert server.call("ping", user=ALICE, source=attacker)["status"] == "ok"
    # Thirty failures from one address, each for another name: the address is stopped.
    sprayer = fresh_source()
    for i in range(30):
        assert server.error("ping", extra={"u": "nobody-%d" % i, "p": "x"}, how="none", source=sprayer)["code"] == 40
    err = server.error("ping", user=ALICE, how="token", source=sprayer)
    assert err["code"] == 0 and "address" in err["message"], err
    assert server.call("ping", user=ALICE, source=fresh_source())["status"] == "ok"
