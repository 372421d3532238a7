#version 330 core
// STM2PE guidance pass: camera-space normal + SMPL part index per fragment, one draw call.
// Replaces pyrender's segmentation shader (pyrender's SEG path: no lighting, no MSAA,
// black clear colour), so every pixel holds exact values.
layout(location = 0) in vec3 position;
layout(location = NORMAL_LOC) in vec3 normal;
layout(location = COLOR_0_LOC) in vec4 color_0;
layout(location = INST_M_LOC) in mat4 inst_m;

uniform mat4 P;
uniform mat4 V;
uniform mat4 M;

out vec3 cam_normal;
flat out float part_code;

void main()
{
    mat4 mv = V * M * inst_m;
    gl_Position = P * mv * vec4(position, 1.0);
    // view and model matrices are rigid here, so mat3(mv) maps normals correctly
    cam_normal = mat3(mv) * normal;
    part_code = color_0.r;
}
