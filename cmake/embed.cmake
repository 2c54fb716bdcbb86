# embed.cmake - turns a text file into a C header holding it as a NUL-terminated array, so that the
# library carries its report page (src/report.html) without reading files at run time.
#   cmake -DINPUT=file -DOUTPUT=header.h -DNAME=identifier -P embed.cmake
# The header defines `static const unsigned char NAME[]`.
file(READ "${INPUT}" content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){24})" "\\1\n" bytes "${bytes}")
get_filename_component(source "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp" "/* Generated from ${source} by cmake/embed.cmake: do not edit. */\n"
                           "static const unsigned char ${NAME}[] = {\n${bytes}0x00};\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
