// Verify authgate access tokens with Node's JOSE libraries, as a resource server would.
//
// Called by tests/interop/test_third_party_verifiers.py, once per signing algorithm:
//   node verify.mjs < job.json
// (on standard input, not in argv: tokens do not belong in a process listing). The job is {"jwksUrl": ..., "cases": [{"name", "token", "issuer", "audience",
// "algorithms": [...]}, ...]}. Every library fetches the JWKS itself over HTTP and
// checks each case with the issuer, audience and algorithm allowlist it names.
// Prints one JSON object: {library: {case name: {"ok": true, "sub": ...} or
// {"ok": false, "error": "..."}}}. The pytest side decides what each outcome means.

import { once } from "node:events";

import express from "express";
import { expressjwt } from "express-jwt";
import * as jose from "jose";
import jsonwebtoken from "jsonwebtoken";
import jwksRsa from "jwks-rsa";

function refusal(error) {
  const name = error?.code ?? error?.name ?? "Error";
  return { ok: false, error: `${name}: ${error?.message ?? String(error)}` };
}

async function withJose(job) {
  // One remote key set for every case: it caches the JWKS by kid, as a service would.
  const keySet = jose.createRemoteJWKSet(new URL(job.jwksUrl));
  const results = {};
  for (const c of job.cases) {
    try {
      const { payload } = await jose.jwtVerify(c.token, keySet, {
        issuer: c.issuer,
        audience: c.audience,
        algorithms: c.algorithms,
        typ: "at+jwt",
      });
      results[c.name] = { ok: true, sub: payload.sub };
    } catch (error) {
      results[c.name] = refusal(error);
    }
  }
  return results;
}

async function withJsonwebtoken(job) {
  const client = jwksRsa({ jwksUri: job.jwksUrl, cache: true });
  const results = {};
  for (const c of job.cases) {
    try {
      const header = jsonwebtoken.decode(c.token, { complete: true })?.header;
      const key = await client.getSigningKey(header?.kid);
      const payload = jsonwebtoken.verify(c.token, key.getPublicKey(), {
        issuer: c.issuer,
        audience: c.audience,
        algorithms: c.algorithms,
      });
      results[c.name] = { ok: true, sub: payload.sub };
    } catch (error) {
      results[c.name] = refusal(error);
    }
  }
  return results;
}

async function withExpressJwt(job) {
  // A real express app on 127.0.0.1 with one protected route per case (each case
  // pins its own issuer, audience and algorithms), called over HTTP with the token.
  const secret = jwksRsa.expressJwtSecret({ jwksUri: job.jwksUrl, cache: true });
  const guards = {};
  for (const c of job.cases) {
    guards[c.name] = expressjwt({
      secret,
      issuer: c.issuer,
      audience: c.audience,
      algorithms: c.algorithms,
    });
  }
  const app = express();
  app.get("/orders/:case", (req, res, next) => guards[req.params.case](req, res, next));
  app.get("/orders/:case", (req, res) => res.json({ sub: req.auth.sub }));
  app.use((error, req, res, next) => {
    res.status(error.status ?? 500).json({ error: `${error.code ?? error.name}: ${error.message}` });
  });
  const server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${server.address().port}`;
  const results = {};
  try {
    for (const c of job.cases) {
      const response = await fetch(`${base}/orders/${encodeURIComponent(c.name)}`, {
        headers: { authorization: `Bearer ${c.token}` },
      });
      const body = await response.json();
      results[c.name] =
        response.status === 200
          ? { ok: true, sub: body.sub }
          : { ok: false, error: `HTTP ${response.status} ${body.error}` };
    }
  } finally {
    server.close();
  }
  return results;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const job = JSON.parse(input);
const output = {
  jose: await withJose(job),
  "jsonwebtoken+jwks-rsa": await withJsonwebtoken(job),
  "express-jwt": await withExpressJwt(job),
};
process.stdout.write(JSON.stringify(output));
