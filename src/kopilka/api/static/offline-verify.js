// Kopilka offline burn: verify a customer's token at a web till without the center.
// ES module, no dependencies at run time: WebCrypto Ed25519 where the browser has it,
// otherwise the vendored @noble/ed25519 (MIT, ./vendor/noble-ed25519-3.2.0.js).
// Token format and the checks: docs/pos-integration.md, "Offline burn" (ADR 0030).
//
//   import { verifyToken } from "/static/offline-verify.js";
//   const keys = (await (await fetch("/api/pos/v1/offline/keys", auth)).json());  // cache it
//   const r = await verifyToken(scannedText, keys.keys, {programId: keys.program_id});
//   if (r.ok) burnAtMost(r.cap); else show(r.code);
//
// Result: {ok: true, cap: "300.00", capHundredths: 30000n, keyId, programId, accountId,
// card, issuedAt: Date, expiresAt: Date, tokenId} or {ok: false, code, detail}, codes as
// in kopilka/offline_verify.py: malformed > unknown_key > bad_signature > wrong_program >
// not_yet_valid > expired > over_cap.

const PREFIX = "KO";
const SIGNED_LEN = 53;
const TOKEN_LEN = 117;
const TEXT_LEN = PREFIX.length + Math.ceil((TOKEN_LEN * 8) / 5);
export const CLOCK_SKEW_S = 120;
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function refuse(code, detail) {
  return { ok: false, code, detail };
}

function base32Decode(text) {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let j = 0;
  for (const ch of text) {
    const v = B32.indexOf(ch);
    if (v < 0) return null;
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out[j++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  // canonical text only: the unused low bits of the last character are zero
  if ((value & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

function base64urlDecode(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Decode a token's text; checks its form only. */
export function parseToken(text) {
  text = String(text).trim();
  if (text.length !== TEXT_LEN || !text.startsWith(PREFIX)) {
    return refuse("malformed", "not an offline burn token");
  }
  const raw = base32Decode(text.slice(PREFIX.length));
  if (raw === null || raw.length !== TOKEN_LEN) {
    return refuse("malformed", "not an offline burn token");
  }
  const dv = new DataView(raw.buffer);
  const version = dv.getUint8(0);
  if (version !== 1) return refuse("malformed", `unknown token version ${version}`);
  const card = dv.getBigUint64(17);
  const issued = dv.getUint32(33);
  const expires = dv.getUint32(37);
  if (card >= 10n ** 13n || expires <= issued) {
    return refuse("malformed", "not an offline burn token");
  }
  const capHundredths = dv.getBigUint64(25);
  const whole = capHundredths / 100n;
  const cents = (capHundredths % 100n).toString().padStart(2, "0");
  return {
    ok: true,
    version,
    keyId: dv.getUint32(1),
    programId: dv.getUint32(5),
    accountId: dv.getBigUint64(9),
    card: card.toString().padStart(13, "0"),
    capHundredths,
    cap: `${whole}.${cents}`,
    issuedAt: new Date(issued * 1000),
    expiresAt: new Date(expires * 1000),
    tokenId: Array.from(raw.slice(41, 53), (b) => b.toString(16).padStart(2, "0")).join(""),
    signed: raw.slice(0, SIGNED_LEN),
    signature: raw.slice(SIGNED_LEN),
  };
}

async function webCryptoVerify(publicKey, signature, message) {
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
    "verify",
  ]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

let engine = null; // "webcrypto" or "noble", found on first use

/** Which Ed25519 the page uses: "webcrypto" or "noble". */
export async function ed25519Engine(force) {
  if (force) engine = force;
  if (engine) return engine;
  try {
    await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    engine = "webcrypto";
  } catch (e) {
    engine = "noble"; // no Ed25519 in this browser's WebCrypto (or no WebCrypto at all)
  }
  return engine;
}

async function signatureValid(publicKey, signature, message) {
  if ((await ed25519Engine()) === "webcrypto") {
    try {
      return await webCryptoVerify(publicKey, signature, message);
    } catch (e) {
      return false; // a malformed public key or signature
    }
  }
  const ed = await import("./vendor/noble-ed25519-3.2.0.js");
  try {
    return await ed.verifyAsync(signature, message, publicKey, { zip215: false });
  } catch (e) {
    return false;
  }
}

/**
 * Verify a scanned token for a sale now (or at options.at).
 * keys: the "keys" list of GET /api/pos/v1/offline/keys ({key_id, public_key}).
 * options: {programId (required), at: Date, points: number|string (what the till wants to
 * burn, checked against the cap), skewSeconds}.
 */
export async function verifyToken(text, keys, options) {
  const opts = options || {};
  const token = parseToken(text);
  if (!token.ok) return token;
  const key = (keys || []).find((k) => Number(k.key_id) === token.keyId);
  if (!key) return refuse("unknown_key", `no public key ${token.keyId} for this program`);
  const valid = await signatureValid(base64urlDecode(key.public_key), token.signature, token.signed);
  if (!valid) return refuse("bad_signature", "the token's signature is not valid");
  if (token.programId !== Number(opts.programId)) {
    return refuse("wrong_program", "the token belongs to another program");
  }
  const at = (opts.at || new Date()).getTime();
  const skew = 1000 * (opts.skewSeconds ?? CLOCK_SKEW_S);
  if (at < token.issuedAt.getTime() - skew) {
    return refuse("not_yet_valid", "the token was issued after this time");
  }
  if (at > token.expiresAt.getTime() + skew) return refuse("expired", "the token has expired");
  if (opts.points !== undefined && opts.points !== null) {
    if (toHundredths(opts.points) > token.capHundredths) {
      return refuse("over_cap", `at most ${token.cap} points may be burned`);
    }
  }
  return token;
}

function toHundredths(points) {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(String(points).trim());
  if (!m) return 1n << 64n; // not a number of points: never within a cap
  return BigInt(m[1]) * 100n + BigInt((m[2] || "").padEnd(2, "0"));
}
