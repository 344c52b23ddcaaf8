#!/usr/bin/env python3
"""Generates the charset samples of the MIME corpus and their expected decoding.

Each sample is a multipart/mixed message whose display name, subject, body and
attachment file name are written in one charset, with the header encodings
(RFC 2047 B and Q, RFC 2231) and transfer encodings (base64, quoted-printable,
8bit) rotated across samples. expected.json records what a correct decoder
must produce. Run from this directory: python3 generate.py
Written for Postgate; same licence as the project.
"""
import base64, json, quopri, urllib.parse

SAMPLES = [
    # (MIME charset name, Python codec, text)
    ("iso-8859-1", "iso8859_1", "Grüße aus München, café naïve"),
    ("iso-8859-2", "iso8859_2", "Zażółć gęślą jaźń"),
    ("iso-8859-3", "iso8859_3", "Ħaġar Qim u ċikkulata"),
    ("iso-8859-4", "iso8859_4", "Ąžuolas ir ūkis"),
    ("iso-8859-5", "iso8859_5", "Съешь же ещё этих мягких французских булок"),
    ("iso-8859-6", "iso8859_6", "مرحبا بالعالم"),
    ("iso-8859-7", "iso8859_7", "Καλημέρα κόσμε"),
    ("iso-8859-8", "iso8859_8", "שלום עולם"),
    ("iso-8859-9", "iso8859_9", "Günaydın İstanbul şekerli"),
    ("iso-8859-10", "iso8859_10", "Sámegiella ŋ ŧ đ"),
    ("iso-8859-11", "iso8859_11", "สวัสดีชาวโลก"),
    ("iso-8859-13", "iso8859_13", "Lietuvių kalba ąčęėįšųūž"),
    ("iso-8859-14", "iso8859_14", "Ysgol Gymraeg ŵyr ŷ"),
    ("iso-8859-15", "iso8859_15", "Prix: 20 € œuvre"),
    ("iso-8859-16", "iso8859_16", "Înțelegere științifică"),
    ("windows-1250", "cp1250", "Příliš žluťoučký kůň"),
    ("windows-1251", "cp1251", "Привет, мир! Ёжик"),
    ("windows-1252", "cp1252", "Smart “quotes” – and … €"),
    ("windows-1253", "cp1253", "Γειά σου κόσμε"),
    ("windows-1254", "cp1254", "Çok güzel ğüşıöç"),
    ("windows-1255", "cp1255", "עברית טובה"),
    ("windows-1256", "cp1256", "اللغة العربية"),
    ("windows-1257", "cp1257", "Latviešu valoda ģimene"),
    ("windows-1258", "cp1258", "Xin chào Đà"),
    ("koi8-r", "koi8_r", "Широкая электрификация южных губерний"),
    ("koi8-u", "koi8_u", "Україна, їжак, ґанок"),
    ("shift_jis", "shift_jis", "日本語のメール、こんにちは"),
    ("iso-2022-jp", "iso2022_jp", "日本語のメール、こんにちは"),
    ("euc-jp", "euc_jp", "日本語の電子メール"),
    ("gb2312", "gb2312", "你好，世界。中文邮件"),
    ("gbk", "gbk", "中文邮件测试，龘"),
    ("gb18030", "gb18030", "中文郵件 €"),
    ("big5", "big5", "繁體中文郵件測試"),
    ("euc-kr", "euc_kr", "안녕하세요 한국어 메일"),
    ("utf-7", "utf_7", "Grüße 日本 €"),
    ("utf-8", "utf_8", "Ünïcödé ✓ 日本 😀"),
]

CTES = ["base64", "quoted-printable", "8bit"]


def ew(text, charset, codec, kind):
    raw = text.encode(codec)
    if kind == "B":
        return "=?%s?B?%s?=" % (charset, base64.b64encode(raw).decode())
    q = "".join(
        chr(b) if (chr(b).isalnum() and b < 128) else ("_" if b == 32 else "=%02X" % b)
        for b in raw
    )
    return "=?%s?Q?%s?=" % (charset, q)


def body_part(text, charset, codec, cte):
    raw = (text + "\r\n").encode(codec)
    if cte == "base64":
        data = base64.encodebytes(raw).decode().replace("\n", "\r\n")
    elif cte == "quoted-printable":
        data = quopri.encodestring(raw).decode("ascii").replace("\n", "\r\n")
    else:
        # 8bit (7bit for iso-2022-jp and utf-7, which are 7-bit encodings)
        data = raw.decode("latin-1")
    return data, raw


def main():
    expected = {}
    for i, (charset, codec, text) in enumerate(SAMPLES):
        cte = CTES[i % 3]
        if cte == "8bit" and charset in ("iso-2022-jp", "utf-7"):
            cte = "7bit"
        kind = "BQ"[i % 2]
        name = text.split()[0].strip(",.:!") + ".txt"
        if i % 2 == 0:
            # RFC 2231 parameter value continuation with charset.
            fname = "filename*=%s''%s" % (charset, urllib.parse.quote(name.encode(codec), safe=""))
        else:
            # RFC 2047 in a quoted parameter, as Outlook and Thunderbird still write.
            fname = 'filename="%s"' % ew(name, charset, codec, "B")
        data, _ = body_part(text, charset, codec, cte)
        att = base64.b64encode(("attachment: " + text + "\n").encode("utf-8")).decode()
        msg = (
            "From: %s <sender@example.net>\r\n"
            "To: recipient@example.org\r\n"
            "Subject: %s\r\n"
            "Date: Thu, 26 Nov 2026 10:00:00 +0100\r\n"
            "Message-ID: <charset-%d@example.net>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b-%d\"\r\n"
            "\r\n"
            "--b-%d\r\n"
            "Content-Type: text/plain; charset=\"%s\"\r\n"
            "Content-Transfer-Encoding: %s\r\n"
            "\r\n"
            "%s\r\n"
            "--b-%d\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Disposition: attachment; %s\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "\r\n"
            "%s\r\n"
            "--b-%d--\r\n"
        ) % (
            ew(text.split()[0].strip(",.:!"), charset, codec, "BQ"[(i + 1) % 2]),
            ew(text, charset, codec, kind),
            i, i, i, charset, cte, data.rstrip("\r\n"), i, fname, att, i,
        )
        fn = "%02d-%s.eml" % (i, charset)
        with open(fn, "wb") as f:
            f.write(msg.encode("latin-1") if cte in ("8bit",) else msg.encode("ascii"))
        expected[fn] = {
            "subject": text,
            "from_name": text.split()[0].strip(",.:!"),
            "text": text,
            "attachments": [name],
        }
    with open("expected.json", "w") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1, sort_keys=True)


main()
