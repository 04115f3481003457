#!/usr/bin/env node
// Helper for test_apiversions.py: drives kafkajs against the broker given as
// argv[2] (admin metadata, one produce, one fetch through a consumer group)
// with DEBUG logging, and prints one JSON object on stdout:
//   { ok, error, logs: [{level, message}], requests: ["Name v"], consumed }
// The Python side makes the assertions.
'use strict';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');

const broker = process.argv[2];
const logs = [];
const logCreator = () => ({ level, log: entry }) => {
  logs.push({ level, message: entry.message, error: entry.error || null });
};

async function main() {
  const kafka = new Kafka({
    clientId: 'silt-versions', brokers: [broker], logLevel: logLevel.DEBUG, logCreator,
    retry: { retries: 2, initialRetryTime: 100 }, connectionTimeout: 3000, requestTimeout: 10000,
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'js-versions', numPartitions: 1 }], waitForLeaders: true });
  await admin.fetchTopicMetadata({ topics: ['js-versions'] });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: 'js-versions', messages: [{ key: 'k', value: 'v' }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: 'js-versions', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: ['js-versions'], fromBeginning: true });
  let consumed = null;
  await consumer.run({ eachMessage: async ({ message }) => { consumed = `${message.key}=${message.value}`; } });
  const deadline = Date.now() + 30000;
  while (consumed === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  await admin.fetchTopicOffsets('js-versions');
  await admin.disconnect();
  return consumed;
}

const limit = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'timed out after 60s', logs, consumed: null }));
  process.exit(0);
}, 60000);

main().then((consumed) => {
  clearTimeout(limit);
  console.log(JSON.stringify({ ok: true, error: null, logs, consumed }));
  process.exit(0);
}, (err) => {
  clearTimeout(limit);
  console.log(JSON.stringify({ ok: false, error: String(err && err.stack ? err.stack : err), logs, consumed: null }));
  process.exit(0);
});
