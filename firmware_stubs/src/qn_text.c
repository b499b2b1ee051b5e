/* qn_text.c -- bounded string builder, see qn_text.h. */
#include "qn_text.h"

void qn_sb_init(qn_sb *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = cap;
    sb->len = 0;
    if (cap > 0) {
        buf[0] = '\0';
    }
}

void qn_sb_char(qn_sb *sb, char c)
{
    if (sb->cap == 0 || sb->len + 1 >= sb->cap) {
        return;
    }
    sb->buf[sb->len++] = c;
    sb->buf[sb->len] = '\0';
}

void qn_sb_str(qn_sb *sb, const char *s)
{
    while (s != NULL && *s != '\0') {
        qn_sb_char(sb, *s++);
    }
}

void qn_sb_mem(qn_sb *sb, const uint8_t *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        qn_sb_char(sb, (s[i] >= 0x20u && s[i] < 0x7Fu) ? (char)s[i] : '?');
    }
}

void qn_sb_u64(qn_sb *sb, uint64_t v)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0 && n < 20);
    while (n > 0) {
        qn_sb_char(sb, digits[--n]);
    }
}

void qn_sb_i64(qn_sb *sb, int64_t v)
{
    if (v < 0) {
        qn_sb_char(sb, '-');
        qn_sb_u64(sb, (uint64_t)(-(v + 1)) + 1u);
    } else {
        qn_sb_u64(sb, (uint64_t)v);
    }
}

void qn_sb_f64(qn_sb *sb, double v)
{
    char digits[7];
    uint64_t m;
    int e = 0;
    int nd = 6;
    int k;

    if (v != v) {
        qn_sb_str(sb, "nan");
        return;
    }
    if (v < 0) {
        qn_sb_char(sb, '-');
        v = -v;
    }
    if (v - v != 0) {
        qn_sb_str(sb, "inf");
        return;
    }
    if (v == 0) {
        qn_sb_char(sb, '0');
        return;
    }
    while (v >= 10.0 && e < 400) {
        v /= 10.0;
        e++;
    }
    while (v < 1.0 && e > -400) {
        v *= 10.0;
        e--;
    }
    m = (uint64_t)(v * 100000.0 + 0.5);
    if (m >= 1000000u) {
        m /= 10u;
        e++;
    }
    for (k = 5; k >= 0; k--) {
        digits[k] = (char)('0' + (int)(m % 10u));
        m /= 10u;
    }
    digits[6] = '\0';
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    if (e < -4 || e >= 6) {
        qn_sb_char(sb, digits[0]);
        if (nd > 1) {
            qn_sb_char(sb, '.');
            for (k = 1; k < nd; k++) {
                qn_sb_char(sb, digits[k]);
            }
        }
        qn_sb_char(sb, 'e');
        qn_sb_char(sb, e < 0 ? '-' : '+');
        if (e < 0) {
            e = -e;
        }
        if (e < 10) {
            qn_sb_char(sb, '0');
        }
        qn_sb_u64(sb, (uint64_t)e);
    } else if (e >= 0) {
        for (k = 0; k <= e; k++) {
            qn_sb_char(sb, k < nd ? digits[k] : '0');
        }
        if (nd > e + 1) {
            qn_sb_char(sb, '.');
            for (k = e + 1; k < nd; k++) {
                qn_sb_char(sb, digits[k]);
            }
        }
    } else {
        qn_sb_str(sb, "0.");
        for (k = 0; k < -e - 1; k++) {
            qn_sb_char(sb, '0');
        }
        for (k = 0; k < nd; k++) {
            qn_sb_char(sb, digits[k]);
        }
    }
}
