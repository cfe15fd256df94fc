#!/usr/bin/env python3
"""Regenerates the seed corpus in fuzz/corpus/<target>/ from tiny MP3s made by ffmpeg.

Run from anywhere: python3 fuzz/make-corpus.py. Needs ffmpeg with libmp3lame. The files are
0.3 s each; the whole corpus stays well under 200 KB. Existing files of the same names are
replaced, others are left alone (remove a target's folder first for a clean slate).
"""

import base64
import json
import pathlib
import struct
import subprocess
import tempfile

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
BOUNDARY = b"legatofuzzboundary"  # the fixed boundary of fuzz_targets/upload.rs

# name -> ffmpeg arguments after the sine source (sample rate given separately)
SOURCES = {
    "mpeg1_128k_cbr.mp3": (44100, ["-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k",
                                   "-id3v2_version", "0", "-write_xing", "0"]),
    "mpeg1_vbr_info.mp3": (44100, ["-ac", "2", "-c:a", "libmp3lame", "-q:a", "7",
                                   "-id3v2_version", "0"]),
    "mpeg2_22k_mono_xing.mp3": (22050, ["-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k",
                                        "-id3v2_version", "0"]),
    "mpeg25_8k.mp3": (8000, ["-ac", "1", "-c:a", "libmp3lame", "-b:a", "8k",
                             "-id3v2_version", "0", "-write_xing", "0"]),
    "id3v2_mpeg2_16k.mp3": (16000, ["-ac", "1", "-c:a", "libmp3lame", "-b:a", "24k",
                                    "-metadata", "title=Seed", "-metadata", "artist=Legato",
                                    "-id3v2_version", "3", "-write_xing", "0"]),
    "id3v2_id3v1_mpeg1_32k.mp3": (32000, ["-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k",
                                          "-metadata", "title=Seed", "-metadata", "artist=Legato",
                                          "-id3v2_version", "4", "-write_id3v1", "1",
                                          "-write_xing", "0"]),
    "mpeg1_layer2_48k.mp2": (48000, ["-ac", "2", "-c:a", "mp2", "-b:a", "64k"]),
}


def encode(name, rate, args, tmp):
    out = tmp / name
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency=440:sample_rate={rate}", "-t", "0.3", *args, str(out)],
        check=True,
    )
    return out.read_bytes()


def first_header(data):
    """The first four bytes that look like an MPEG audio sync after any ID3v2 tag."""
    start = 0
    if data[:3] == b"ID3":
        size = 0
        for b in data[6:10]:
            size = (size << 7) | b
        start = 10 + size
    at = data.index(b"\xff", start)
    return data[at:at + 4]


def trailing_tags(audio):
    """The audio followed by an APEv2 tag (header and footer), a Lyrics3 v2 tag and ID3v1."""
    item = struct.pack("<II", 4, 0) + b"Title\x00Seed"
    size = len(item) + 32  # items and footer
    def ape_block(flags):
        return b"APETAGEX" + struct.pack("<IIII", 2000, size, 1, flags) + b"\x00" * 8
    ape = ape_block(0xA0000000) + item + ape_block(0x80000000)
    body = b"LYRICSBEGIN" + b"IND00003110" + b"LYR00005la la"
    lyrics = body + b"%06d" % len(body) + b"LYRICS200"
    # TAG, title, artist, album, year, comment, genre: 128 bytes.
    id3v1 = (b"TAG" + b"Seed".ljust(30, b"\x00") + b"Legato".ljust(30, b"\x00")
             + b"\x00" * (30 + 4 + 30) + b"\xff")
    assert len(id3v1) == 128
    return audio + ape + lyrics + id3v1


def multipart(fields, file_field, file_name, audio):
    parts = []
    for name, value in fields:
        parts.append(b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"" + name
                     + b"\"\r\n\r\n" + value + b"\r\n")
    parts.append(b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"" + file_field
                 + b"\"; filename=\"" + file_name + b"\"\r\nContent-Type: audio/mpeg\r\n\r\n"
                 + audio + b"\r\n")
    parts.append(b"--" + BOUNDARY + b"--\r\n")
    return b"".join(parts)


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        files = {name: encode(name, rate, args, pathlib.Path(tmp))
                 for name, (rate, args) in SOURCES.items()}
    files["trailing_ape_lyrics3_id3v1.mp3"] = trailing_tags(files["mpeg25_8k.mp3"])
    # Two files back to back: a format change (discontinuity) and an ID3v2 tag mid-stream.
    files["concat_8k_then_id3v2_16k.mp3"] = files["mpeg25_8k.mp3"] + files["id3v2_mpeg2_16k.mp3"]

    for name, data in files.items():
        stem = name.rsplit(".", 1)[0]
        write("scan_and_tags", name, data)
        if name in SOURCES:
            write("mpeg_header", stem, first_header(data))
        # [mode, hi, lo]: (u16 + 1) / 2000 * (1 + mode % 4) seconds; 19999 -> 10 s.
        write("package", stem + "_10s", bytes([0, 0x4E, 0x1F]) + data)
    write("package", "mpeg1_128k_cbr_0.1s", bytes([0, 0x00, 0xC7]) + files["mpeg1_128k_cbr.mp3"])
    write("package", "concat_2s", bytes([1, 0x07, 0xCF]) + files["concat_8k_then_id3v2_16k.mp3"])
    write("package", "nan_target", bytes([0xFF, 0, 0]) + struct.pack(">d", float("nan"))
          + files["mpeg25_8k.mp3"])

    small = files["mpeg25_8k.mp3"]
    medium = files["id3v2_mpeg2_16k.mp3"]
    big = files["mpeg1_128k_cbr.mp3"]
    def seed_json(audio, wrap=False):
        encoded = base64.b64encode(audio).decode()
        if wrap:  # Python's base64.encodebytes style: lines of 76 characters
            encoded = "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
        return json.dumps({"author": "Legato", "name": "Seed", "song_base64": encoded}).encode()
    # selector: bits 0-2 Content-Type, 3-5 Content-Length, 6 query parameters (upload.rs).
    write("upload", "json_typed", bytes([0 | 1 << 3]) + seed_json(small))
    write("upload", "json_untyped_wrapped", bytes([1]) + seed_json(medium, wrap=True))
    write("upload", "json_text_plain", bytes([2 | 1 << 3]) + seed_json(small))
    write("upload", "json_over_limit", bytes([0]) + seed_json(big))
    write("upload", "multipart_song", bytes([3 | 1 << 3]) + multipart(
        [(b"name", b"Seed"), (b"author", b"Legato")], b"song", b"seed.mp3", small))
    write("upload", "multipart_file_extra_field", bytes([3]) + multipart(
        [(b"comment", b"ignored"), (b"name", b"Seed")], b"file", b"seed.mp3", medium))
    write("upload", "multipart_declared_too_large", bytes([3 | 2 << 3]) + multipart(
        [(b"name", b"Seed")], b"song", b"seed.mp3", small))
    write("upload", "raw_audio_mpeg_query", bytes([4 | 1 << 3 | 1 << 6]) + small)
    write("upload", "raw_octet_stream_over_limit", bytes([5]) + big)
    write("upload", "raw_untyped", bytes([1 | 1 << 6]) + small)
    write("upload", "content_type_line", bytes([7]) + b"audio/x-wav; charset=binary\n" + small)


if __name__ == "__main__":
    main()
