import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ImportFailure } from "./import-failure.ts";
import { parseChallenge, SourceAuth } from "./source-auth.ts";

const scope = "repository:team/app:pull";
const challenge = `Bearer realm="https://auth.example/token",service="reg",scope="${scope}"`;

function auth(
  options: { credentials?: boolean; tokens?: string[]; status?: number; now?: () => number } = {},
) {
  const asked: { url: URL; headers: Record<string, string> }[] = [];
  const tokens = [...(options.tokens ?? ["t1", "t2"])];
  const source = new SourceAuth({
    credentials: options.credentials ? { username: "u", password: "p" } : undefined,
    realmAllowed: (realm) => realm.protocol === "https:" || realm.hostname === "127.0.0.1",
    requestToken: async (url, headers) => {
      asked.push({ url, headers });
      return {
        status: options.status ?? 200,
        text: JSON.stringify({ token: tokens.shift(), expires_in: 300 }),
      };
    },
    now: options.now,
  });
  return { source, asked };
}

describe("source authentication", () => {
  it("parses Bearer and Basic challenges", () => {
    assert.deepEqual(parseChallenge(challenge), {
      scheme: "bearer",
      params: { realm: "https://auth.example/token", service: "reg", scope },
    });
    assert.deepEqual(parseChallenge('Basic realm="r"'), {
      scheme: "basic",
      params: { realm: "r" },
    });
    assert.equal(parseChallenge('Basic realm="a", Bearer realm="b"')?.scheme, "bearer");
    assert.equal(parseChallenge("Negotiate"), undefined);
  });

  it("gets a token with Basic credentials and keeps it per scope until it expires", async () => {
    let now = 0;
    const { source, asked } = auth({ credentials: true, now: () => now });
    assert.equal(source.headerFor(scope), undefined);
    assert.equal(await source.answer(challenge, scope), true);
    assert.equal(asked[0]?.url.searchParams.get("service"), "reg");
    assert.equal(asked[0]?.url.searchParams.get("scope"), scope);
    assert.equal(asked[0]?.headers.Authorization, `Basic ${Buffer.from("u:p").toString("base64")}`);
    assert.equal(source.headerFor(scope), "Bearer t1");
    assert.equal(source.headerFor("repository:other:pull"), undefined);
    now = 300_000;
    assert.equal(source.headerFor(scope), undefined, "expired");
  });

  it("asks for an anonymous token without credentials", async () => {
    const { source, asked } = auth();
    await source.answer(challenge, scope);
    assert.equal(asked[0]?.headers.Authorization, undefined);
  });

  it("says what is wrong when the source refuses", async () => {
    await assert.rejects(
      auth({ credentials: true, status: 401 }).source.answer(challenge, scope),
      /refused the username or password/,
    );
    await assert.rejects(
      auth({ status: 401 }).source.answer(challenge, scope),
      /requires authentication/,
    );
    await assert.rejects(auth().source.answer('Basic realm="x"', scope), /requires authentication/);
    await assert.rejects(
      auth({ credentials: true }).source.answer('Bearer realm="http://auth.example/token"', scope),
      (error: unknown) => error instanceof ImportFailure && /not HTTPS/.test(error.message),
    );
    const same = auth({ tokens: ["t", "t"] }).source;
    await same.answer(challenge, scope);
    await assert.rejects(same.answer(challenge, scope), /requires authentication/);
  });

  it("sends Basic credentials after a Basic challenge, once", async () => {
    const { source } = auth({ credentials: true });
    assert.equal(await source.answer('Basic realm="r"', scope), true);
    assert.match(source.headerFor(scope) ?? "", /^Basic /);
    await assert.rejects(source.answer('Basic realm="r"', scope), /refused/);
  });
});
