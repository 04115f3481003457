#!/usr/bin/env node
// @aws-sdk/client-s3 v3 (and @aws-sdk/lib-storage) against silt, in both
// addressing styles:
//  - path style (forcePathStyle: true, endpoint http://127.0.0.1:PORT):
//    CreateBucket, ListBuckets; PutObject from a Buffer with ContentType and
//    Metadata (the SDK adds a CRC32 header), GetObject returns body, type,
//    metadata, ETag = quoted MD5, and ChecksumCRC32 with ChecksumMode
//    ENABLED; PutObject from a stream (fs.ReadStream and a generator-backed
//    Readable with ContentLength): the SDK sends aws-chunked framing with a
//    CRC32 trailer even over HTTP, and the stored object must be exactly the
//    payload (no framing) with the trailer's checksum; HeadObject; range
//    GetObject; CopyObject; ListObjectsV2 through the paginator with
//    MaxKeys 2 and with a Delimiter; DeleteObjects (the SDK sends only a
//    CRC32 checksum, no Content-MD5); lib-storage Upload of 12 MiB from a
//    stream in 5 MiB parts (ETag "-3", MD5 of GetObject); NoSuchKey 404.
//  - virtual-host style (endpoint http://localhost:PORT, bucket in the Host
//    as <bucket>.localhost:PORT): *.localhost does not resolve here, so the
//    http.Agent gets a lookup that maps it to 127.0.0.1; a middleware checks
//    that requests really went to <bucket>.localhost. CreateBucket, Put,
//    Get, ListObjectsV2, Upload, DeleteObject, DeleteBucket.
// Run alone: tests/integration/s3_jssdk.js
'use strict';

const crypto = require('crypto');
const dns = require('dns');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { Readable } = require('stream');
const { SiltS3, check, eq, log, runTest } = require('./s3_harness');

let S3;
let Upload;
let NodeHttpHandler;
try {
  S3 = require('@aws-sdk/client-s3');
  ({ Upload } = require('@aws-sdk/lib-storage'));
  ({ NodeHttpHandler } = require('@smithy/node-http-handler'));
} catch (e) {
  console.log(`FAIL: @aws-sdk packages missing (run npm ci at the repo root): ${e.message}`);
  process.exit(1);
}

const MiB = 1 << 20;
const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');
const crc32b64 = (b) => {
  const v = zlib.crc32(b);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(v >>> 0);
  return out.toString('base64');
};

function mpEtag(parts) {
  const d = Buffer.concat(parts.map((p) => crypto.createHash('md5').update(p).digest()));
  return `"${md5(d)}-${parts.length}"`;
}

async function bodyBytes(res) {
  return Buffer.from(await res.Body.transformToByteArray());
}

async function expectError(p, what) {
  try {
    await p;
  } catch (e) {
    return { name: e.name, status: e.$metadata && e.$metadata.httpStatusCode };
  }
  throw new Error(`${what}: succeeded, want an error`);
}

// A lookup for the http.Agent: *.localhost to 127.0.0.1 when the system
// resolver does not do it (glibc here does not).
function localhostLookup(hostname, options, cb) {
  if (typeof options === 'function') { cb = options; options = {}; }
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options && options.all) return cb(null, [{ address: '127.0.0.1', family: 4 }]);
    return cb(null, '127.0.0.1', 4);
  }
  return dns.lookup(hostname, options, cb);
}

// Every client records the Host and x-amz-content-sha256 of what it sends
// (after signing: the deserialize step sees the final request).
const sent = [];

function client(endpoint, pathStyle) {
  const c = new S3.S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: pathStyle,
    credentials: { accessKeyId: 'siltadmin', secretAccessKey: 'siltadmin' },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true, lookup: localhostLookup }),
      requestTimeout: 20000,
      connectionTimeout: 5000,
    }),
  });
  c.middlewareStack.add((next) => async (args) => {
    if (args.request && args.request.hostname) {
      sent.push({ host: args.request.hostname, path: args.request.path,
        sha: args.request.headers['x-amz-content-sha256'] });
    }
    return next(args);
  }, { step: 'deserialize', name: 'recordSent', priority: 'high' });
  return c;
}

async function coreFlows(c, b, tmp, tag) {
  await c.send(new S3.CreateBucketCommand({ Bucket: b }));
  const names = (await c.send(new S3.ListBucketsCommand({}))).Buckets.map((x) => x.Name);
  check(names.includes(b), `${tag}: ListBuckets has ${b}: ${names}`);

  log(`${tag}: PutObject from a buffer`);
  const buf = crypto.randomBytes(200000);
  let r = await c.send(new S3.PutObjectCommand({
    Bucket: b, Key: 'buf/obj.bin', Body: buf, ContentType: 'application/x-js', Metadata: { who: 'jssdk' },
  }));
  eq(r.ETag, `"${md5(buf)}"`, `${tag}: PutObject ETag`);
  let g = await c.send(new S3.GetObjectCommand({ Bucket: b, Key: 'buf/obj.bin', ChecksumMode: 'ENABLED' }));
  const got = await bodyBytes(g);
  check(got.equals(buf), `${tag}: GetObject body differs (length ${got.length})`);
  eq([g.ContentType, g.Metadata, g.ETag], ['application/x-js', { who: 'jssdk' }, `"${md5(buf)}"`],
    `${tag}: GetObject type, metadata, ETag`);
  eq(g.ChecksumCRC32, crc32b64(buf), `${tag}: GetObject ChecksumCRC32`);

  log(`${tag}: PutObject from streams (aws-chunked with a CRC32 trailer)`);
  const file = path.join(tmp, `${tag}-stream.bin`);
  const fdata = crypto.randomBytes(3 * MiB + 123);
  fs.writeFileSync(file, fdata);
  sent.length = 0;
  r = await c.send(new S3.PutObjectCommand({ Bucket: b, Key: 'stream/file.bin', Body: fs.createReadStream(file) }));
  eq(sent.map((x) => x.sha), ['STREAMING-UNSIGNED-PAYLOAD-TRAILER'], `${tag}: the stream went as aws-chunked with a trailer`);
  eq(r.ETag, `"${md5(fdata)}"`, `${tag}: streamed PutObject ETag is the MD5 of the payload`);
  g = await c.send(new S3.GetObjectCommand({ Bucket: b, Key: 'stream/file.bin', ChecksumMode: 'ENABLED' }));
  const sgot = await bodyBytes(g);
  eq([sgot.length, md5(sgot)], [fdata.length, md5(fdata)], `${tag}: streamed object is the payload without framing`);
  eq(g.ChecksumCRC32, crc32b64(fdata), `${tag}: the trailer's CRC32 is stored`);
  const gdata = crypto.randomBytes(70000);
  const gen = Readable.from((function* chunks() {
    for (let i = 0; i < gdata.length; i += 9000) yield gdata.subarray(i, i + 9000);
  })());
  r = await c.send(new S3.PutObjectCommand({ Bucket: b, Key: 'stream/gen.bin', Body: gen, ContentLength: gdata.length }));
  g = await c.send(new S3.GetObjectCommand({ Bucket: b, Key: 'stream/gen.bin' }));
  eq(md5(await bodyBytes(g)), md5(gdata), `${tag}: generator stream round trip`);

  log(`${tag}: HeadObject, range, CopyObject`);
  const h = await c.send(new S3.HeadObjectCommand({ Bucket: b, Key: 'buf/obj.bin' }));
  eq(h.ContentLength, buf.length, `${tag}: HeadObject ContentLength`);
  g = await c.send(new S3.GetObjectCommand({ Bucket: b, Key: 'buf/obj.bin', Range: 'bytes=100-199' }));
  eq([g.$metadata.httpStatusCode, g.ContentRange], [206, `bytes 100-199/${buf.length}`], `${tag}: range status`);
  check((await bodyBytes(g)).equals(buf.subarray(100, 200)), `${tag}: range body`);
  r = await c.send(new S3.CopyObjectCommand({ Bucket: b, Key: 'copy/obj.bin', CopySource: `${b}/buf/obj.bin` }));
  eq(r.CopyObjectResult.ETag, `"${md5(buf)}"`, `${tag}: CopyObject ETag`);

  log(`${tag}: ListObjectsV2 paginator`);
  const keys = [];
  for (let i = 0; i < 7; i++) {
    const k = `list/k${i}`;
    keys.push(k);
    await c.send(new S3.PutObjectCommand({ Bucket: b, Key: k, Body: k }));
  }
  const seen = [];
  let pages = 0;
  for await (const page of S3.paginateListObjectsV2({ client: c, pageSize: 2 }, { Bucket: b, Prefix: 'list/' })) {
    pages++;
    check(pages <= 10, `${tag}: paginator did not stop`);
    check((page.Contents || []).length <= 2, `${tag}: page over MaxKeys`);
    for (const o of page.Contents || []) seen.push(o.Key);
  }
  eq([seen, pages], [keys, 4], `${tag}: paginated keys and page count`);
  const top = await c.send(new S3.ListObjectsV2Command({ Bucket: b, Delimiter: '/' }));
  eq((top.CommonPrefixes || []).map((p) => p.Prefix), ['buf/', 'copy/', 'list/', 'stream/'], `${tag}: common prefixes`);

  log(`${tag}: DeleteObjects (CRC32, no Content-MD5)`);
  r = await c.send(new S3.DeleteObjectsCommand({ Bucket: b, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
  eq((r.Deleted || []).map((d) => d.Key).sort(), keys, `${tag}: DeleteObjects Deleted`);
  eq(r.Errors || [], [], `${tag}: DeleteObjects Errors`);
  const after = await c.send(new S3.ListObjectsV2Command({ Bucket: b, Prefix: 'list/' }));
  eq(after.KeyCount, 0, `${tag}: keys gone`);

  log(`${tag}: lib-storage Upload, 12 MiB stream in 5 MiB parts`);
  const big = crypto.randomBytes(12 * MiB);
  const up = new Upload({
    client: c,
    params: { Bucket: b, Key: 'big/upload.bin', Body: Readable.from([big.subarray(0, 7 * MiB), big.subarray(7 * MiB)]) },
    partSize: 5 * MiB,
    queueSize: 2,
  });
  r = await up.done();
  const parts = [big.subarray(0, 5 * MiB), big.subarray(5 * MiB, 10 * MiB), big.subarray(10 * MiB)];
  g = await c.send(new S3.GetObjectCommand({ Bucket: b, Key: 'big/upload.bin' }));
  eq(md5(await bodyBytes(g)), md5(big), `${tag}: Upload round trip MD5`);
  eq(g.ETag, mpEtag(parts), `${tag}: Upload made a 3-part object`);

  const e = await expectError(c.send(new S3.GetObjectCommand({ Bucket: b, Key: 'nope' })), 'GetObject missing');
  eq([e.name, e.status], ['NoSuchKey', 404], `${tag}: missing key`);
}

async function main() {
  const s = await new SiltS3().start();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'silt-s3it-jsdata-'));
  try {
    log(`@aws-sdk/client-s3 ${require('@aws-sdk/client-s3/package.json').version}`);
    await coreFlows(client(s.endpoint, true), 'js-path', tmp, 'path');

    const resolves = await new Promise((resolve) => {
      dns.lookup('js-vhost.localhost', (err, addr) => resolve(!err && addr === '127.0.0.1'));
    });
    log(`virtual-host style: *.localhost ${resolves ? 'resolves' : 'does not resolve; the agent maps it to 127.0.0.1'}`);
    const vc = client(`http://localhost:${s.port}`, false);
    sent.length = 0;
    await coreFlows(vc, 'js-vhost', tmp, 'vhost');
    const hosts = sent.filter((x) => x.path !== '/' || x.host !== 'localhost').map((x) => x.host);
    const vh = hosts.filter((h) => h === 'js-vhost.localhost').length;
    check(vh > 10 && vh === hosts.length,
      `virtual-host requests went to js-vhost.localhost (${vh} of ${hosts.length}: ${[...new Set(hosts)]})`);
    await vc.send(new S3.DeleteObjectCommand({ Bucket: 'js-vhost', Key: 'buf/obj.bin' }));
    const e = await expectError(vc.send(new S3.HeadObjectCommand({ Bucket: 'js-vhost', Key: 'buf/obj.bin' })), 'head after delete');
    eq(e.status, 404, 'vhost: HeadObject after DeleteObject');
    // Empty the bucket through the path-style client and delete it by vhost.
    const pc = client(s.endpoint, true);
    const all = await pc.send(new S3.ListObjectsV2Command({ Bucket: 'js-vhost' }));
    await pc.send(new S3.DeleteObjectsCommand({ Bucket: 'js-vhost', Delete: { Objects: all.Contents.map((o) => ({ Key: o.Key })) } }));
    await vc.send(new S3.DeleteBucketCommand({ Bucket: 'js-vhost' }));
    const names = (await pc.send(new S3.ListBucketsCommand({}))).Buckets.map((x) => x.Name);
    eq(names, ['js-path'], 'buckets after the vhost DeleteBucket');
    eq(await s.stop(), 0, 'silt exit status after SIGTERM');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runTest(main);
