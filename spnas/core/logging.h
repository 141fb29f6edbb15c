// glog's LOG, VLOG and CHECK macros in every file, whatever LibTorch header it includes first.
// LibTorch from PyPI is built without glog: its c10/util/Logging.h defines LOG and CHECK for its
// own logger, which drops INFO lines. Including it here, before glog, lets glog's definitions
// win in every order of includes. Include this header instead of <glog/logging.h>.
#ifndef SPNAS_CORE_LOGGING_H_
#define SPNAS_CORE_LOGGING_H_

#include <c10/util/Logging.h>

#undef CHECK
#undef DCHECK
#undef DLOG
#undef LOG
#undef LOG_IF
#undef VLOG
#undef VLOG_IF
#undef VLOG_IS_ON

#include <glog/logging.h>

#endif  // SPNAS_CORE_LOGGING_H_
