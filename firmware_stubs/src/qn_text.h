/* qn_text.h -- a bounded string builder for error messages (no printf, no libm).
 * The buffer always holds a NUL-terminated string; text that does not fit is cut. */
#ifndef QN_TEXT_H
#define QN_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t cap;     /* bytes, including the NUL */
    size_t len;
} qn_sb;

void qn_sb_init(qn_sb *sb, char *buf, size_t cap);
void qn_sb_str(qn_sb *sb, const char *s);
/* Append len bytes of wire text; bytes outside printable ASCII become '?'. */
void qn_sb_mem(qn_sb *sb, const uint8_t *s, size_t len);
void qn_sb_char(qn_sb *sb, char c);
void qn_sb_i64(qn_sb *sb, int64_t v);
void qn_sb_u64(qn_sb *sb, uint64_t v);
/* Six significant digits, like printf("%g"). */
void qn_sb_f64(qn_sb *sb, double v);

#endif /* QN_TEXT_H */
