#version 330 core
// RGB = camera-space normal mapped (n + 1) / 2 (OpenGL camera: +x right, +y up, +z toward
// the viewer); A = (SMPL part index + 1) / 255, decoded on the CPU into the semantic map.
in vec3 cam_normal;
flat in float part_code;
uniform vec3 color;
out vec4 frag_color;

void main()
{
    vec3 n = normalize(cam_normal);
    frag_color = vec4(0.5 * n + 0.5, part_code);
}
