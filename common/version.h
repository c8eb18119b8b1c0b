/* version.h - the release version every binary prints. */
#ifndef GR_VERSION_H
#define GR_VERSION_H
#define GR_VERSION "0.1.0"
#endif
