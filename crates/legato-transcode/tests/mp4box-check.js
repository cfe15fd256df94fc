// Reads an fMP4 init segment and its media segments with mp4box.js (GPAC's ISO BMFF parser,
// npm `mp4box` 0.5.4: later versions misreport a correct `dfLa` box) and prints what it
// found as JSON, with every error or warning the parser logged.
//
//   NODE_PATH=<dir>/node_modules node mp4box-check.js init.mp4 seg000.m4s seg001.m4s ...
'use strict';
const fs = require('fs');
const MP4Box = require('mp4box');

const logged = [];
for (const level of ['error', 'warn']) {
  const original = console[level];
  console[level] = (...args) => {
    logged.push(`${level}: ${args.join(' ')}`);
    if (process.env.MP4BOX_VERBOSE) original(...args);
  };
}
MP4Box.Log.setLogLevel(MP4Box.Log.warn);

function parse(buffers) {
  const file = MP4Box.createFile();
  let ready = null;
  file.onError = (e) => logged.push(`onError: ${e}`);
  file.onReady = (info) => { ready = info; };
  let start = 0;
  for (const bytes of buffers) {
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    ab.fileStart = start;
    start += bytes.byteLength;
    file.appendBuffer(ab);
  }
  file.flush();
  return { file, ready };
}

const [initPath, ...segmentPaths] = process.argv.slice(2);
const init = fs.readFileSync(initPath);
const { file, ready } = parse([init]);
const trak = file.moov && file.moov.traks[0];
const entry = trak && trak.mdia.minf.stbl.stsd.entries[0];
const out = {
  init: {
    ready: ready !== null,
    codec: entry ? entry.getCodec() : null,
    sampleEntry: entry ? entry.type : null,
    timescale: trak ? trak.mdia.mdhd.timescale : null,
    channels: entry ? entry.channel_count : null,
    fragmented: ready ? ready.isFragmented : null,
    elst: trak && trak.edts && trak.edts.elst
      ? trak.edts.elst.entries.map((e) => ({ duration: e.segment_duration, mediaTime: e.media_time }))
      : [],
    dfLa: entry && entry.type === 'fLaC' ? Boolean(entry.dfLa) : null,
    esds: entry && entry.type === 'mp4a' ? Boolean(entry.esds) : null,
  },
  segments: [],
  errors: logged,
};
for (const path of segmentPaths) {
  const segment = fs.readFileSync(path);
  const parsed = parse([init, segment]).file;
  const moof = parsed.moofs && parsed.moofs[parsed.moofs.length - 1];
  const traf = moof && moof.trafs[0];
  const trun = traf && traf.truns[0];
  const mdat = parsed.mdats && parsed.mdats[parsed.mdats.length - 1];
  out.segments.push({
    path,
    sequence: moof ? moof.mfhd.sequence_number : null,
    tfdt: traf && traf.tfdt ? traf.tfdt.baseMediaDecodeTime : null,
    samples: trun ? trun.sample_count : null,
    // Per-sample durations, or the track fragment's default for every sample.
    duration: trun
      ? (trun.sample_duration && trun.sample_duration.length
        ? trun.sample_duration.reduce((a, b) => a + b, 0)
        : trun.sample_count * traf.tfhd.default_sample_duration)
      : null,
    bytes: trun ? trun.sample_size.reduce((a, b) => a + b, 0) : null,
    mdat: mdat ? mdat.size - mdat.hdr_size : null,
    styp: Boolean(parsed.styp || (parsed.boxes || []).some((b) => b.type === 'styp')),
  });
}
process.stdout.write(JSON.stringify(out, null, 1));
