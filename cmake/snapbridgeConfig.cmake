# find_package(snapbridge) support: provides the imported target snapbridge::snapbridge.
include("${CMAKE_CURRENT_LIST_DIR}/snapbridgeTargets.cmake")
