#!/usr/bin/env node
// usage: node verify.js <payload>   (or payload on stdin)
// exit 0 + JSON {valid:true, decoded} if BakongKHQR.verify() accepts, exit 1 otherwise.
const { BakongKHQR } = require("bakong-khqr");
const validate = require("bakong-khqr/src/controller/decodeValidation"); // same check verify() runs; throws {status:{errorCode,message}}
const qr = (process.argv[2] ?? require("fs").readFileSync(0, "utf8")).trim();
const valid = BakongKHQR.verify(qr).isValid;
let reason = null;
if (!valid) { try { validate(qr); reason = "CRC mismatch or malformed CRC tag"; } catch (e) { reason = e?.status?.message ?? String(e); } }
const decoded = BakongKHQR.decode(qr).data;
console.log(JSON.stringify({ valid, reason, decoded }));
process.exit(valid ? 0 : 1);
