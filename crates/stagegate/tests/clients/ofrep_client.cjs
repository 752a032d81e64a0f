// A real OpenFeature client for the integration test: @openfeature/server-sdk with the OFREP
// provider (@openfeature/ofrep-provider), driven line by line on stdin ("FLAG TARGETING_KEY");
// each answer is one JSON line on stdout. The code default is false: the safe default.
const { OpenFeature } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');
const readline = require('node:readline');

async function main() {
  const provider = new OFREPProvider({
    baseUrl: process.env.OFREP_URL,
    headers: [['Authorization', `Bearer ${process.env.OFREP_TOKEN}`]],
  });
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient('stagegate-test');
  console.log(JSON.stringify({ ready: true }));
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [flag, key] = line.trim().split(/\s+/);
    if (!flag) continue;
    const d = await client.getBooleanDetails(flag, false, key ? { targetingKey: key } : {});
    console.log(JSON.stringify({
      value: d.value,
      reason: d.reason ?? null,
      variant: d.variant ?? null,
      errorCode: d.errorCode ?? null,
    }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
