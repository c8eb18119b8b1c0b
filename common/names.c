/* names.c - see names.h. */
#include "common/names.h"

#include <string.h>

bool gr_topic_name_valid(gr_str name)
{
    if (name.len <= 0 || name.len > GR_TOPIC_NAME_MAX)
        return false;
    if ((name.len == 1 && name.ptr[0] == '.') ||
        (name.len == 2 && memcmp(name.ptr, "..", 2) == 0))
        return false;
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}
