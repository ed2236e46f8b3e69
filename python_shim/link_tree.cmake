# cmake -DSRC=<python_shim> -DDST=<build>/python -P link_tree.cmake
# Makes DST/<package>/<entry> a symlink to SRC/<package>/<entry> for both packages; the
# package folders themselves stay real so that _C can be built into DST/ipex.
foreach(pkg ipex intel_extension_for_pytorch)
  file(MAKE_DIRECTORY ${DST}/${pkg})
  file(GLOB entries RELATIVE ${SRC}/${pkg} ${SRC}/${pkg}/*)
  foreach(e ${entries})
    if(e STREQUAL "__pycache__")
      continue()
    endif()
    if(NOT IS_SYMLINK ${DST}/${pkg}/${e})
      file(CREATE_LINK ${SRC}/${pkg}/${e} ${DST}/${pkg}/${e} SYMBOLIC)
    endif()
  endforeach()
endforeach()
