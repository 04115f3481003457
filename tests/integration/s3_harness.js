// s3_harness.js - a silt server for the node S3 tests (@aws-sdk/client-s3):
// the server handling of silt_harness.js, waiting for the S3 listener.
'use strict';

const path = require('path');
const h = require(path.join(__dirname, 'silt_harness.js'));

// port is the S3 listener; endpoint its URL.
class SiltS3 extends h.Server {
  constructor(config) { super(config, 'silt-s3it-js-'); }

  get waitPort() { return this.s3Port; }

  get port() { return this.s3Port; }

  get endpoint() { return `http://127.0.0.1:${this.s3Port}`; }
}

// The S3 tests drive several clients: a longer overall limit.
const runTest = (main, limitMs = 150000) => h.runTest(main, limitMs);

module.exports = { SiltS3, check: h.check, eq: h.eq, log: h.log, runTest, sleep: h.sleep,
  TestFailure: h.TestFailure };
