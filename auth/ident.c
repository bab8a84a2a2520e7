/* User names (ident.h). */
#include <string.h>

#include "ident.h"
#include "topic.h"

/* 1 if name[0..len) may be a user. */
int
ident_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > IDENT_MAX || name[0] == '#' ||
	    (len == 1 && name[0] == '*'))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x21 || c > 0x7e || c == ':')
			return 0;
	}
	return 1;
}

/* 1 if the user name may stand for a whole topic segment. */
int
ident_is_segment(const char *name, size_t len)
{
	/* A valid topic with no '/' is one segment without '+' or '#'. */
	return topic_valid(name, len) && memchr(name, '/', len) == NULL;
}
