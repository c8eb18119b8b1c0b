/* suites.h - every Check suite of the unit test runner; one per module. */
#ifndef GR_TEST_SUITES_H
#define GR_TEST_SUITES_H
#include <check.h>

Suite *buf_suite(void);
Suite *proto_suite(void);
Suite *proto_all_suite(void);
Suite *config_suite(void);
Suite *netserver_suite(void);
Suite *zerocopy_suite(void);
Suite *kclient_suite(void);
Suite *crc32c_suite(void);
Suite *compress_suite(void);
Suite *batch_suite(void);
Suite *index_suite(void);
Suite *checkpoint_suite(void);
Suite *log_suite(void);
Suite *cleaner_suite(void);
Suite *logtask_suite(void);
Suite *purgatory_suite(void);
Suite *metadata_suite(void);
Suite *raft_suite(void);
Suite *topic_config_suite(void);
Suite *control_suite(void);
Suite *offsets_topic_suite(void);
Suite *group_suite(void);
Suite *offsets_log_suite(void);
Suite *offset_reset_suite(void);
Suite *fetch_session_suite(void);
Suite *log_apis_suite(void);
Suite *topic_settings_suite(void);

#endif
