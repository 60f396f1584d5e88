"""Scripts the browser tests run in a page: they import the sealing modules from /static/seal/ and return
plain values for the Python side to compare with the published vectors and the Python library.

Test-only code: the seeded generator below makes envelopes predictable and must never reach a page.
"""

# The test-vector generator's randomness (crypto/_random.py: HMAC-SHA256 over a counter, keyed by a hash of
# the seed; each read takes whole blocks). Test-only: the page always uses crypto.getRandomValues.
JS_VECTORS = """
async ({env, hpke: hv, merkle: mv, receipt: rv}) => {
  const B = await import('/static/seal/bytes.js');
  const E = await import('/static/seal/envelope.js');
  const H = await import('/static/seal/hpke.js');
  const R = await import('/static/seal/receipt.js');
  async function drbg(seed) {
    const raw = await crypto.subtle.digest('SHA-256', B.concat(B.utf8('ebid/test-vectors/drbg'), B.utf8(seed)));
    const key = await crypto.subtle.importKey('raw', raw, {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']);
    const blocks = [];
    for (let c = 1; c <= 64; c++) blocks.push(new Uint8Array(await crypto.subtle.sign('HMAC', key, B.u64(c))));
    let next = 0;
    return (n) => { const out = []; while (out.length < n) out.push(...blocks[next++]); return Uint8Array.from(out.slice(0, n)); };
  }
  const out = {envelopes: {}};
  const signer = {scalar: B.fromHex(env.keys.signer.private), point: B.fromHex(env.keys.signer.public)};
  const roles = {tender: E.ROLE_TENDER, bidder: E.ROLE_BIDDER};
  for (const v of env.vectors) {
    const sealed = await E.seal(new Blob([B.fromHex(v.plaintext)]), {
      signer, context: B.fromHex(v.context), keyMode: v.key_mode, segmentSize: v.segment_size,
      lengthStated: v.length_stated, random: await drbg(v.seed),
      recipients: v.recipients.map((r) => ({role: roles[r], point: B.fromHex(env.keys[r].public)}))});
    out.envelopes[v.name] = {bytes: B.hex(new Uint8Array(await sealed.blob.arrayBuffer())),
                             sha256: B.hex(sealed.sha256), size: sealed.size};
  }
  const {sharedSecret, enc} = await H.encap(B.fromHex(hv.pkRm), B.fromHex(hv.ikmE));
  const ks = await H.keySchedule(sharedSecret, B.fromHex(hv.info));
  const wrapped = await H.open(B.fromHex(hv.skRm), enc, B.fromHex(hv.ct), {info: B.fromHex(hv.info), aad: B.fromHex(hv.aad)});
  out.hpke = {enc: B.hex(enc), shared_secret: B.hex(sharedSecret), key: B.hex(ks.key), base_nonce: B.hex(ks.baseNonce),
              exporter_secret: B.hex(ks.exporterSecret), pt: B.hex(wrapped)};
  const leaves = mv.entries.map((e) => R.leafHash(B.utf8(e)));
  out.leaves = leaves.map(B.hex);
  out.inclusion = mv.inclusion.map((c) => {
    const ok = (proof) => { try { R.verifyInclusion(leaves[c.index], c.index, c.tree_size, proof, B.fromHex(mv.roots[c.tree_size])); return true; } catch (e) { return e.code; } };
    const bad = c.proof.length ? [...c.proof.slice(0, -1), c.proof[c.proof.length - 1].replace(/^./, (d) => d === '0' ? '1' : '0')] : ['00'.repeat(32)];
    return [ok(c.proof), ok(bad), ok(c.proof.slice(1))];
  });
  out.consistency = mv.consistency.map((c) => {
    const ok = (proof, oldRoot) => { try { R.verifyConsistency(c.old_size, c.new_size, B.fromHex(oldRoot), B.fromHex(mv.roots[c.new_size]), proof); return true; } catch (e) { return e.code; } };
    return [ok(c.proof, mv.roots[c.old_size]), ok(c.proof, mv.roots[c.old_size - 1] || mv.roots[0]), ok(c.proof.slice(0, -1), mv.roots[c.old_size])];
  });
  const k = (name) => ({point: B.fromHex(rv.keys[name].public), keyId: rv.keys[name].key_id});
  const receipt = JSON.parse(rv.receipt);
  const body = await R.verifyDocument(receipt, k('receipt'), R.RECEIPT_TYPE, 'receipt_signature');
  out.receipt_ok = body.log_index === 1;
  const forged = JSON.parse(rv.receipt); forged.body.envelope_size += 1;
  out.receipt_forged = await R.verifyDocument(forged, k('receipt'), R.RECEIPT_TYPE, 'receipt_signature').then(() => true, (e) => e.code);
  out.head_with_receipt_key = await R.verifyDocument(JSON.parse(rv.tree_head), k('receipt'), R.TREE_HEAD_TYPE, 'head_signature').then(() => true, (e) => e.code);
  return out;
}
"""

JS_RANDOM_SEALS = """
async ({signer, recipient, plaintextSize, count, highS}) => {
  const B = await import('/static/seal/bytes.js');
  const E = await import('/static/seal/envelope.js');
  const P = await import('/static/seal/p256.js');
  const plain = new Uint8Array(plaintextSize);
  for (let i = 0; i < plain.length; i += 65536) crypto.getRandomValues(plain.subarray(i, i + 65536));
  const results = [];
  for (let i = 0; i < count; i++) {
    const sealed = await E.seal(new Blob([plain]), {
      signer: {scalar: B.fromHex(signer), point: await P.pointOf(B.fromHex(signer))},
      recipients: [{role: E.ROLE_TENDER, point: B.fromHex(recipient)}],
      context: E.bidContext('T-1', '1', '91350100M000100Y43', i + 1)});
    results.push(B.b64encode(new Uint8Array(await sealed.blob.arrayBuffer())));
  }
  return {plaintext: B.b64encode(plain), envelopes: results,
          lowS: B.hex(P.lowS(B.fromHex(highS)))};
}
"""

JS_KEYFILES = """
async (files) => {
  const KF = await import('/static/seal/keyfile.js');
  const B = await import('/static/seal/bytes.js');
  const out = {};
  for (const [name, [text, pass]] of Object.entries(files)) {
    out[name] = await KF.readKeyFile(text, pass).then((k) => B.hex(k.point), (e) => 'error:' + e.code);
  }
  return out;
}
"""

JS_BID_ZIP = """
async ({docs}) => {
  const bid = await import('/static/seal/bid.js');
  const B = await import('/static/seal/bytes.js');
  const {offer, errors} = bid.checkOffer({lot: 'L1', price: '00012345678.9', durationDays: '365', quality: '合格',
    managerName: '张伟', managerCertificateNo: '鲁1372020201234', alternatives: true});
  const files = docs.map(([name, text]) => new File([B.utf8(text)], name));
  const checked = bid.checkDocuments(files);
  const built = await bid.buildBid(offer, checked.named);
  const refused = bid.checkOffer({lot: 'L1', price: '1,000.00', durationDays: '0', quality: '', managerName: 'a\\nb',
    managerCertificateNo: 'x'}).errors;
  return {errors, refused, zip: B.b64encode(new Uint8Array(await built.blob.arrayBuffer())),
          badName: bid.checkDocuments([new File(['x'], '.hidden')]).error,
          twice: bid.checkDocuments([new File(['x'], 'A.pdf'), new File(['y'], 'a.pdf')]).error};
}
"""
