from tests.conftest import bearer, login


async def test_health_ready_and_login(client, container):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    me = await client.get("/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
