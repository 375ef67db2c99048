"""MuJoCo CLEVR-Robot: scene, environment, goal predicates and scripted expert."""
