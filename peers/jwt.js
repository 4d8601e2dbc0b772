// njs 0.7.9 JWT checks for peers/nginx.conf.in (rendered into the run dir).
// HS256: synchronous (js_set), the consumer's secret looked up by iss in
// secrets.json. RS256: WebCrypto, async, so through auth_request/js_content.
// Both pin the algorithm and check exp and nbf, like our gateway and HAProxy.
const nodeCrypto = require('crypto');
const fs = require('fs');
const SECRETS = JSON.parse(fs.readFileSync('@RUN@/secrets.json'));
const RS_DER = Buffer.from(
    fs.readFileSync('@RUN@/rs256.pem', 'utf8')
        .replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''),
    'base64');

function parse(r) {
    const auth = r.headersIn['Authorization'] || '';
    const m = auth.match(/^\s*Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)\s*$/i);
    if (!m) {
        return null;
    }
    try {
        return {
            h: m[1], p: m[2], s: m[3],
            header: JSON.parse(Buffer.from(m[1], 'base64url').toString()),
            claims: JSON.parse(Buffer.from(m[2], 'base64url').toString()),
        };
    } catch (e) {
        return null;
    }
}

function timesOk(c) {
    const now = Math.floor(Date.now() / 1000);
    if (typeof c.exp !== 'number' || c.exp <= now) {
        return false;
    }
    return c.nbf === undefined || (typeof c.nbf === 'number' && c.nbf <= now);
}

function same(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    let d = 0;
    for (let i = 0; i < a.length; i++) {
        d |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return d === 0;
}

function hs256(r) {
    const t = parse(r);
    if (!t || t.header.alg !== 'HS256' || typeof t.claims.iss !== 'string') {
        return '0';
    }
    const secret = SECRETS[t.claims.iss];
    if (secret === undefined) {
        return '0';
    }
    const mac = nodeCrypto.createHmac('sha256', secret).update(t.h + '.' + t.p).digest('base64url');
    return same(mac, t.s) && timesOk(t.claims) ? '1' : '0';
}

async function rs256(r) {
    const t = parse(r);
    if (!t || t.header.alg !== 'RS256' || !timesOk(t.claims)) {
        r.return(401);
        return;
    }
    try {
        const key = await crypto.subtle.importKey('spki', RS_DER,
            { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
        const ok = await crypto.subtle.verify({ name: 'RSASSA-PKCS1-v1_5' }, key,
            Buffer.from(t.s, 'base64url'), Buffer.from(t.h + '.' + t.p));
        r.return(ok ? 204 : 401);
    } catch (e) {
        r.error('jwt: ' + e);
        r.return(401);
    }
}

export default { hs256, rs256 };
