# The layers of src/, enforced by the build (docs/ARCHITECTURE.md, "Layers").
#
# Each folder of src/ is a static library, zs_<folder>, linked only to the
# layers it may use:
#
#   util  <-  zk  <-  cache  <-  sync  <-  http  <-  main (zoosyncd)
#   schema (util only), auth (util only): beside the chain
#
# cache, sync and http use util; cache and above may use schema, sync and
# above auth. zk is PRIVATE to cache and sync: the layers above sync never
# see ZooKeeper (sync's headers take the write session as an opaque handle).
#
# How an include across a forbidden edge fails: no target has src/ as an
# include directory. Each layer's library has its own root,
# <build>/layers/<folder>, holding one symbolic link <folder> -> src/<folder>,
# as a PUBLIC include directory; include directories travel only along
# PUBLIC link edges. So `#include "zk/zkc.h"` resolves in zk and in the
# libraries that link zk (cache, sync, the programs and tests), and is "No
# such file or directory" anywhere else (http, auth, schema, util). A
# quoted include is also looked up next to the including file, which never
# resolves "<folder>/<name>.h" from inside src/<layer>/ (main.c, in src/
# itself, is the top and may include everything).
#
# System headers cannot be hidden that way (<zookeeper/zookeeper.h> is in
# /usr/include), so zoosync_layer_check, run before every build of the
# libraries, refuses <zookeeper/...> outside zk, cache and sync, and
# relative includes ("../") anywhere in src/.
#
# zoosync_layers(<src dir>) defines the libraries (both the main project and
# the fuzz project under fuzz/ call it) and sets ZOOSYNC_LAYERS in the
# caller's scope. It needs the PkgConfig:: targets, Threads::Threads,
# ZOOKEEPER_MT and ZOOKEEPER_INCLUDE of the caller.
set(ZOOSYNC_LAYERS_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

function(zoosync_layers src)
  set(layers util schema auth zk cache sync http)
  set(root ${CMAKE_BINARY_DIR}/layers)
  add_custom_target(zoosync_layer_check
    COMMAND ${CMAKE_COMMAND} -DZOOSYNC_SRC=${src} -P ${ZOOSYNC_LAYERS_SCRIPT}
    COMMENT "Checking the layers' includes" VERBATIM)
  foreach(layer ${layers})
    file(MAKE_DIRECTORY ${root}/${layer})
    set(link ${root}/${layer}/${layer})
    if(IS_SYMLINK ${link})
      file(READ_SYMLINK ${link} target)
      if(NOT target STREQUAL "${src}/${layer}")
        file(REMOVE ${link}) # a tree moved since: point at this one
      endif()
    endif()
    if(NOT IS_SYMLINK ${link})
      file(CREATE_LINK ${src}/${layer} ${link} SYMBOLIC)
    endif()
    file(GLOB sources CONFIGURE_DEPENDS ${src}/${layer}/*.c)
    add_library(zs_${layer} STATIC ${sources})
    target_include_directories(zs_${layer} PUBLIC ${root}/${layer})
    add_dependencies(zs_${layer} zoosync_layer_check)
  endforeach()
  target_link_libraries(zs_util PUBLIC PkgConfig::GLIB Threads::Threads m)
  target_link_libraries(zs_schema PUBLIC zs_util PRIVATE PkgConfig::PCRE2)
  target_link_libraries(zs_auth PUBLIC zs_util PkgConfig::JWT PkgConfig::JANSSON PRIVATE PkgConfig::OPENSSL)
  target_include_directories(zs_zk PUBLIC ${ZOOKEEPER_INCLUDE})
  target_compile_definitions(zs_zk PUBLIC THREADED)
  target_link_libraries(zs_zk PUBLIC zs_util ${ZOOKEEPER_MT} PRIVATE PkgConfig::OPENSSL)
  target_link_libraries(zs_cache PUBLIC zs_util zs_schema PkgConfig::JANSSON PRIVATE zs_zk)
  target_link_libraries(zs_sync PUBLIC zs_cache zs_auth PRIVATE zs_zk)
  target_link_libraries(zs_http PUBLIC zs_sync zs_auth PkgConfig::MHD PRIVATE PkgConfig::GNUTLS)
  # docs/openapi.json, served at GET /v1/openapi.json, as a C array of the
  # http layer (cmake/embed.cmake; the build needs no YAML parser).
  get_filename_component(top ${src} DIRECTORY)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/openapi_doc.c
    COMMAND ${CMAKE_COMMAND} -DIN=${top}/docs/openapi.json -DOUT=${CMAKE_BINARY_DIR}/openapi_doc.c
            -DNAME=zs_openapi_json -P ${top}/cmake/embed.cmake
    DEPENDS ${top}/docs/openapi.json ${top}/cmake/embed.cmake
    COMMENT "Embedding docs/openapi.json")
  target_sources(zs_http PRIVATE ${CMAKE_BINARY_DIR}/openapi_doc.c)
  # Every layer at once, for the programs above them all (tests, fuzz
  # targets, benchmarks): not a layer, and linked by no library.
  add_library(zoosync INTERFACE)
  target_link_libraries(zoosync INTERFACE zs_http zs_zk zs_auth zs_schema)
  set(ZOOSYNC_LAYERS ${layers} PARENT_SCOPE)
endfunction()

# Run as a script (cmake -DZOOSYNC_SRC=... -P layers.cmake): the checks
# include directories cannot make.
if(CMAKE_SCRIPT_MODE_FILE AND DEFINED ZOOSYNC_SRC)
  file(GLOB_RECURSE files ${ZOOSYNC_SRC}/*.c ${ZOOSYNC_SRC}/*.h)
  set(bad "")
  foreach(f ${files})
    file(RELATIVE_PATH rel ${ZOOSYNC_SRC} ${f})
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include")
    foreach(line ${lines})
      if(line MATCHES "\\.\\./")
        list(APPEND bad "${rel}: a relative include goes around the layers: ${line}")
      endif()
      if(line MATCHES "<zookeeper/" AND NOT rel MATCHES "^(zk|cache|sync)/" AND NOT rel STREQUAL "main.c")
        list(APPEND bad "${rel}: only zk, cache and sync speak ZooKeeper: ${line}")
      endif()
    endforeach()
  endforeach()
  if(bad)
    string(REPLACE ";" "\n  " msg "${bad}")
    message(FATAL_ERROR "Forbidden includes (see cmake/layers.cmake):\n  ${msg}")
  endif()
endif()
