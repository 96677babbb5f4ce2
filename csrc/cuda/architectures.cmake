# Which CUDA architectures a build targets (CMakeLists.txt; tests/test_build_config.py runs
# these functions against stand-in nvcc and nvidia-smi programs).

# The compute capabilities of the visible GPUs ("90;80"), empty without a driver or a GPU.
function(fastsample_visible_archs out)
  set(archs "")
  find_program(FS_NVIDIA_SMI nvidia-smi)
  if(FS_NVIDIA_SMI)
    execute_process(COMMAND ${FS_NVIDIA_SMI} --query-gpu=compute_cap --format=csv,noheader
                    OUTPUT_VARIABLE caps RESULT_VARIABLE rc ERROR_QUIET)
    if(rc EQUAL 0)
      string(REGEX MATCHALL "[0-9]+\\.[0-9]+" caps "${caps}")
      foreach(cap ${caps})
        string(REPLACE "." "" arch "${cap}")
        list(APPEND archs ${arch})
      endforeach()
      list(REMOVE_DUPLICATES archs)
    endif()
  endif()
  set(${out} "${archs}" PARENT_SCOPE)
endfunction()

# Architectures this nvcc can build, Ampere on (PTX for the newest, so later GPUs JIT): a list
# naming sm_100/sm_120 would fail outright with nvcc < 12.8.
function(fastsample_default_archs nvcc out)
  execute_process(COMMAND ${nvcc} --version OUTPUT_VARIABLE text ERROR_QUIET)
  string(REGEX MATCH "release ([0-9]+\\.[0-9]+)" _ "${text}")
  set(version "${CMAKE_MATCH_1}")
  if(version VERSION_GREATER_EQUAL 12.8)
    set(archs "80-real;86-real;89-real;90-real;100-real;120")
  elseif(version VERSION_GREATER_EQUAL 11.8)
    set(archs "80-real;86-real;89-real;90")
  else()
    set(archs "80-real;86")
  endif()
  message(STATUS "fastsample: nvcc ${version}: default CUDA architectures ${archs}")
  set(${out} "${archs}" PARENT_SCOPE)
endfunction()
